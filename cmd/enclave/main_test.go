package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/internal/seal"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().String()
}

// emptyDatabase returns the DSN of a database with no tables at all.
func emptyDatabase(t *testing.T) string {
	dsn := dbtest.URL(t)
	db, err := sql.Open("postgres", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`)
	require.NoError(t, err)
	return dsn
}

func TestServeNamesEveryMissingVariable(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve"}, envOf(map[string]string{"ENCLAVE_SHUTDOWN_TIMEOUT": "soon"}), &out, &errb)
	require.Error(t, err)
	for _, v := range []string{"DATABASE_URL", "ENCLAVE_VASP_ID", "ENCLAVE_API_KEYS", "ENCLAVE_SHUTDOWN_TIMEOUT",
		"CHAINALYSIS_KYT_API_KEY", "ENCLAVE_CALLBACK_URL", "ENCLAVE_CALLBACK_SECRET"} {
		require.Contains(t, err.Error(), v)
	}
}

// TestServeNeverShowsASecret: serve fails to start for many reasons; whatever is wrong, no
// password of DATABASE_URL, no credential inside a URL and no key reaches its output or error.
func TestServeNeverShowsASecret(t *testing.T) {
	t.Parallel()
	const pw, kytPass, cbPass, apiKey, kytKey, cbToken = "Pg-S3cret-Zq8v", "KytUrlPass-6677", "CbUrlPass-8899", "ApiKey-5544", "KytKey-3322", "CbToken-1100"
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("callback-secret-32-bytes-long-00"))
	base := map[string]string{"ENCLAVE_VASP_ID": "1", "ENCLAVE_API_KEYS": apiKey, "CHAINALYSIS_KYT_API_KEY": kytKey,
		"CHAINALYSIS_KYT_API_URL": "http://kytuser:" + kytPass + "@127.0.0.1:1/api/kyt", "ENCLAVE_CALLBACK_URL": "https://cb:" + cbPass + "@127.0.0.1:1/cb",
		"ENCLAVE_CALLBACK_TOKEN": cbToken, "ENCLAVE_CALLBACK_SECRET": secret, "ENCLAVE_LISTEN_ADDR": "127.0.0.1:0",
		"ENCLAVE_DATA_KEYSET": et.Keyset(t)}
	for name, change := range map[string]map[string]string{
		"DSNPortNotANumber":  {"DATABASE_URL": "postgres://enclave:" + pw + "@127.0.0.1:notaport/enclave"},
		"DSNPercentInPass":   {"DATABASE_URL": "postgres://enclave:" + pw + "%zz@127.0.0.1:5432/enclave"},
		"DSNSlashInPass":     {"DATABASE_URL": "postgres://enclave:Pg/" + pw + "@127.0.0.1:5432/enclave"},
		"DSNNothingListens":  {"DATABASE_URL": "postgres://enclave:" + pw + "@127.0.0.1:1/enclave?sslmode=disable&connect_timeout=2"},
		"KeyValueDSN":        {"DATABASE_URL": "host=127.0.0.1 port=1 user=enclave password=" + pw + " sslmode=disable connect_timeout=2"},
		"BadKYTURL":          {"DATABASE_URL": "postgres://enclave:" + pw + "@127.0.0.1:1/e", "CHAINALYSIS_KYT_API_URL": "ftp://kytuser:" + kytPass + "@host"},
		"BadCallbackURL":     {"DATABASE_URL": "postgres://enclave:" + pw + "@127.0.0.1:1/e", "ENCLAVE_CALLBACK_URL": "cb:" + cbPass + "@host"},
		"BadSecretAndTiming": {"DATABASE_URL": "postgres://enclave:" + pw + "@127.0.0.1:1/e", "ENCLAVE_CALLBACK_SECRET": cbToken, "ENCLAVE_SHUTDOWN_TIMEOUT": "soon"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range change {
				env[k] = v
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"serve"}, envOf(env), &out, &errb)
			require.Error(t, err)
			all := out.String() + errb.String() + err.Error()
			for _, s := range []string{pw, kytPass, cbPass, apiKey, kytKey, cbToken, secret} {
				require.NotContains(t, all, s)
			}
		})
	}
}

func TestServeRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": emptyDatabase(t), "ENCLAVE_VASP_ID": "1", "ENCLAVE_API_KEYS": "k", "ENCLAVE_LISTEN_ADDR": freeAddr(t),
		"CHAINALYSIS_KYT_API_KEY": "kyt", "ENCLAVE_CALLBACK_URL": "http://127.0.0.1:1/cb",
		"ENCLAVE_CALLBACK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123")), "ENCLAVE_DATA_KEYSET": et.Keyset(t)}
	err := run(context.Background(), []string{"serve"}, envOf(env), &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "run `enclave migrate`")
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"--help"}, envOf(nil), &out, &out))
	for _, c := range []string{"serve", "migrate", "kytsim", "version"} {
		require.Contains(t, out.String(), c)
	}
	for _, c := range []string{"serve", "migrate", "kytsim", "version"} {
		out.Reset()
		err := run(context.Background(), []string{c, "--help"}, envOf(nil), &out, &out)
		require.ErrorIs(t, err, errHelp(), c)
		require.Equal(t, 0, exitCode(err), c)
		require.Contains(t, out.String(), "Usage: enclave "+c)
	}
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"version"}, envOf(nil), &out, &out))
	require.True(t, strings.HasPrefix(out.String(), "enclave "), out.String())

	err := run(context.Background(), []string{"frobnicate"}, envOf(nil), &out, &out)
	require.Equal(t, 2, exitCode(err))
}

// TestMigrateServeAndShutDown runs the binary's two commands as an operator would, drives the
// API over real HTTP, shuts down, and checks that no secret reached the logs.
func TestMigrateServeAndShutDown(t *testing.T) {
	t.Parallel()
	dsn := emptyDatabase(t)
	// Give the DSN a password, which must never be logged (trust auth ignores it).
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	if _, has := u.User.Password(); !has {
		u.User = url.UserPassword(u.User.Username(), "db-password-never-logged")
	}
	dsn = u.String()

	secret := func(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }
	peers := filepath.Join(t.TempDir(), "peers.json")
	peerSecret := secret("peer-secret-never-logged-0123456")
	require.NoError(t, os.WriteFile(peers, []byte(fmt.Sprintf(`{"peers":[{"vaspId":"222","name":"Peer","url":"http://127.0.0.1:1","secret":%q}]}`, peerSecret)), 0o600))
	require.NoError(t, os.Chmod(peers, 0o644)) // as a careless copy leaves it: serve warns
	addr := freeAddr(t)
	env := map[string]string{
		"DATABASE_URL": dsn, "ENCLAVE_VASP_ID": "111", "ENCLAVE_API_KEYS": "api-key-never-logged, second-key-never-logged",
		"ENCLAVE_LISTEN_ADDR": addr, "ENCLAVE_PEERS_FILE": peers,
		"CHAINALYSIS_KYT_API_KEY": "kyt-key-never-logged", "ENCLAVE_CALLBACK_URL": "http://127.0.0.1:1/callbacks",
		"ENCLAVE_CALLBACK_TOKEN": "callback-token-never-logged", "ENCLAVE_CALLBACK_SECRET": secret("callback-secret-never-logged-012"),
		"ENCLAVE_DATA_KEYSET": et.Keyset(t),
	}
	secrets := []string{"db-password-never-logged", "api-key-never-logged", "second-key-never-logged", peerSecret,
		"kyt-key-never-logged", "callback-token-never-logged", env["ENCLAVE_CALLBACK_SECRET"], env["ENCLAVE_DATA_KEYSET"][20:60]}

	var out, logs et.SyncBuffer
	require.NoError(t, run(context.Background(), []string{"migrate"}, envOf(env), &out, &logs))
	require.Contains(t, out.String(), "migrated")
	require.NoError(t, run(context.Background(), []string{"migrate"}, envOf(env), &out, &logs), "migrate twice")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, envOf(env), &out, &logs) }()
	waitReady(t, "http://"+addr, done)

	c := &openapitest.Client{T: t, Base: "http://" + addr, Bearer: "second-key-never-logged"}
	r := c.Do("POST", "/v1/verifications", []byte(`{"beneficiaryVaspId":"222","assetInfo":{"symbol":"eth","amount":"1"},
		"payload":{"ivms101":{"beneficiary":{"accountNumber":["0x3d21a92285bf17cbdde5f77531b8b58ac400288a"]}}}}`), nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	r = c.Do("GET", "/v1/verifications?symbol=ETH", nil, nil)
	require.Contains(t, string(r.Body), `"total":1`)
	c.Bearer = "wrong"
	require.Equal(t, 403, c.Do("GET", "/v1/verifications", nil, nil).Status)

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "graceful shutdown")
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of its context ending")
	}
	all := out.String() + logs.String()
	require.Contains(t, all, "enclave serving")
	require.Contains(t, all, "stopped")
	require.Contains(t, all, "ENCLAVE_PEERS_FILE "+peers+" is readable by every user of this machine (mode 0644)")
	for _, s := range secrets {
		require.NotContains(t, all, s, "a secret reached the output")
	}
}

// waitReady polls /readyz until it answers 200, failing if serve exits first or 30 s pass.
func waitReady(t *testing.T, base string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("serve exited before it was ready: %v", err)
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("serve was not ready within 30s")
}

func errHelp() error { return flag.ErrHelp }

// devArgs runs dev --demo briskly, both enclaves on free ports.
func devArgs(dataDir string) []string {
	return []string{"dev", "--demo", "--listen", "127.0.0.1:0", "--counterparty-listen", "127.0.0.1:0", "--transfer-delay", "100ms",
		"--monitor-interval", "200ms", "--data-dir", dataDir}
}

// TestDevDemo proves the README's run command: `enclave dev --demo` starts its own PostgreSQL,
// kytsim, two enclaves that are each other's counterparty and a demo VASP backend for each,
// tells the story of both roles and exits 0 once every callback of both sides arrived; a
// second run reuses the cluster, both databases and the keys it left behind.
func TestDevDemo(t *testing.T) {
	et.Slow(t, "runs dev: two enclaves and a PostgreSQL of their own")
	t.Parallel()
	dir := devDir(t)
	var out et.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, devArgs(filepath.Join(dir, "pgdata")), envOf(nil), &out, &out)
	require.NoError(t, err, "%s", out.String())
	s := out.String()
	require.NotContains(t, s, "✗", "every callback and Verify User call verifies")
	// Every callback and Verify User question of each side (delivered at least once).
	for what, n := range map[string]int{
		"[us] callback VERIFICATION_RESULT": 3, "[us] callback TX_REPORT": 1, "[us] callback CHAINALYSIS_KYT_RESULT": 3,
		"[us] callback CHAINALYSIS_KYT_ALERT": 1, "[us] callback CHAINALYSIS_ADDRESS_SCREENING_RESULT": 1, "[us] Verify User asked": 1,
		"[counterparty] callback VERIFICATION_RESULT": 1, "[counterparty] callback TX_REPORT": 2, "[counterparty] Verify User asked": 3,
	} {
		require.GreaterOrEqual(t, strings.Count(s, what), n, "%s\n%s", what, s)
	}
	require.NotContains(t, s, "callback ERROR_REPORT", "no side cancels")
	require.NotContains(t, s, "callback VERIFICATION_REQUEST", "both VASPs answer Verify User")
	// We send: VERIFIED with the beneficiary's name, then DENIED and UNKNOWN from the counterparty's book.
	require.Contains(t, s, "the book: a known wallet and its customer's name → VERIFIED OK")
	require.Contains(t, s, "the beneficiary VASP returned: Grace Hopper, "+devTheirWallet)
	require.Contains(t, s, "the book: a listed person → DENIED BLACKLISTED")
	require.Contains(t, s, ": DENIED BLACKLISTED: a person of this transfer is listed")
	require.Contains(t, s, ": UNKNOWN UNKNOWN-ADDRESS")
	require.Contains(t, s, "the originator sent it, txHash "+devTxHash)
	// They send: our backend answers, the counterparty learns it, its tx report reaches us.
	require.Contains(t, s, "the beneficiary VASP returned: Ada Lovelace, "+devDepositAddress)
	require.Contains(t, s, "the originator sent it, txHash "+devDepositTx)
	require.Contains(t, s, "callback CHAINALYSIS_KYT_ALERT")
	require.Contains(t, s, "SEVERE sanctioned entity: OFAC SDN Demo Designation 2026-11-23 ($364.03, DIRECT, MONITORING)")
	require.Contains(t, s, "answered at once: PROCESSED, risk Severe (Identified as Sanctioned Entity)")
	require.Contains(t, s, "status PROCESSED, risk Severe: Identified as Sanctioned Entity")
	require.Contains(t, s, "ATTEMPT OUTGOING: 1.5 ETH on ETHEREUM")
	require.Contains(t, s, "TRANSFER OUTGOING: 0.2 ETH on ETHEREUM")
	require.Contains(t, s, "TRANSFER INCOMING: 0.0000867 BTC on BITCOIN")
	require.Contains(t, s, "SEVERE sanctioned entity: OFAC SDN Fujing Zheng")
	require.Contains(t, s, `answered 400 {"code":"UNSUPPORTED-RISK-ASSESSMENT"`)
	require.Contains(t, s, "DATABASE_URL=postgres://")
	require.Contains(t, s, "demo done")
	key := regexp.MustCompile(`API key: (\S+) \(new`).FindStringSubmatch(s)
	require.NotNil(t, key, s)
	require.Regexp(t, `console: http://127\.0\.0\.1:\d+/console/  log in as demo-admin, password \S{20,} \(admin`, s)
	peers, err := loadPeersFile(filepath.Join(dir, "counterparty-peers.json"))
	require.NoError(t, err, "the counterparty's peers file is one serve reads")
	require.Equal(t, devVasp, peers[0].VaspID)

	out = et.SyncBuffer{}
	require.NoError(t, run(ctx, devArgs(filepath.Join(dir, "pgdata")), envOf(nil), &out, &out), "%s", out.String())
	require.Contains(t, out.String(), "demo done")
	require.Contains(t, out.String(), "API key: "+key[1]+" (the same as last time", "the key is kept with the data")
	require.Contains(t, out.String(), "log in as demo-admin, password ", "a working login at every start")
}

// TestDevBook: each rule of the printed customer book, as the demo VASP backend answers
// Verify User.
func TestDevBook(t *testing.T) {
	t.Parallel()
	question := func(originator, beneficiary, wallet string) verifyUserQuestion {
		var q verifyUserQuestion
		b, _ := json.Marshal(map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"originatorPersons": persons(originator)},
			"beneficiary": map[string]any{"beneficiaryPersons": persons(beneficiary), "accountNumber": []string{wallet}}}})
		require.NoError(t, json.Unmarshal(b, &q))
		return q
	}
	for name, c := range map[string]struct {
		q              verifyUserQuestion
		result, reason string
	}{
		"KnownWalletAndName":   {question("Charles Babbage", "grace  HOPPER", strings.ToUpper(devTheirWallet)), "VERIFIED", "OK"},
		"AnotherName":          {question("Charles Babbage", "Grace Hooper", devTheirWallet), "DENIED", "MISMATCHED-NAME"},
		"NoName":               {question("Charles Babbage", "", devTheirWallet), "DENIED", "LACK-OF-INFORMATION"},
		"ForeignWallet":        {question("Charles Babbage", "Grace Hopper", devLaterSanctioned), "UNKNOWN", "UNKNOWN-ADDRESS"},
		"ListedBeneficiary":    {question("Charles Babbage", devListed, devTheirWallet), "DENIED", "BLACKLISTED"},
		"ListedOriginator":     {question(devListed, "Grace Hopper", devTheirWallet), "DENIED", "BLACKLISTED"},
		"ListedForeignAddress": {question("Charles Babbage", devListed, devSanctioned), "DENIED", "BLACKLISTED"},
	} {
		t.Run(name, func(t *testing.T) {
			a, _ := theirBook.answer(c.q)
			require.Equal(t, c.result, a.Result)
			require.Equal(t, c.reason, a.Reason)
			if a.Result == "VERIFIED" {
				b, _ := json.Marshal(a)
				require.Contains(t, string(b), `"primaryIdentifier":"Hopper"`, "the customer's name is returned")
				require.Contains(t, string(b), `"accountNumber":["`+strings.ToUpper(devTheirWallet)+`"]`, "the wallet as asked")
			}
		})
	}
}

// persons is the IVMS101 persons of a full name, none for "".
func persons(name string) []any {
	if name == "" {
		return nil
	}
	first, last, _ := strings.Cut(strings.Join(strings.Fields(name), " "), " ")
	return []any{devPerson(first, last)}
}

// TestDevFromADirectoryPostgresCannotEnter: a clone in root's home (mode 0700) or in a
// mktemp -d directory. As root, PostgreSQL runs as the postgres user, which cannot enter it:
// dev keeps the data elsewhere, says where, and leaves nothing behind in the clone but its keys.
func TestDevFromADirectoryPostgresCannotEnter(t *testing.T) {
	if testing.Short() {
		t.Skip("runs dev: two enclaves and a PostgreSQL of their own, a slow test left out by -short")
	}
	t.Parallel()
	clone := t.TempDir() // mode 0700, as mktemp -d makes it
	requested := filepath.Join(clone, ".enclave", "pgdata")
	if os.Geteuid() == 0 {
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(fallbackDataDir(requested))) })
	}
	var out et.SyncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	err := run(ctx, devArgs(requested), envOf(nil), &out, &out)
	require.NoError(t, err, "%s", out.String())
	require.Contains(t, out.String(), "demo done")
	if os.Geteuid() == 0 {
		require.Contains(t, out.String(), "which cannot enter ")
		require.Contains(t, out.String(), "kept in "+fallbackDataDir(requested))
		_, err := os.Stat(requested)
		require.True(t, os.IsNotExist(err), "no empty data directory left in the clone")
	}
	_, err = os.Stat(filepath.Join(clone, ".enclave", "dev.json"))
	require.NoError(t, err, "the keys are kept in the clone")
}

func TestDevRefusesATakenPort(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	err = run(context.Background(), []string{"dev", "--listen", l.Addr().String(), "--data-dir", t.TempDir()}, envOf(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "another `enclave dev`")
}

// TestKeysetAndRekeyCommands: the keyset commands print keysets that load, rotate changes the
// primary, and rekey on a migrated database says it is done.
func TestKeysetAndRekeyCommands(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"keyset", "new"}, envOf(nil), &out, &errb))
	first := strings.TrimSpace(out.String())
	s1, err := seal.Load(first)
	require.NoError(t, err)
	require.Contains(t, errb.String(), "keep it secret")

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"keyset", "rotate"}, envOf(map[string]string{"ENCLAVE_DATA_KEYSET": first}), &out, &errb))
	s2, err := seal.Load(strings.TrimSpace(out.String()))
	require.NoError(t, err)
	require.NotEqual(t, s1.Primary(), s2.Primary())
	require.Error(t, run(context.Background(), []string{"keyset", "rotate"}, envOf(nil), &out, &errb), "nothing to rotate")
	require.Error(t, run(context.Background(), []string{"keyset", "spin"}, envOf(nil), &out, &errb))

	// --out writes a new file only its owner reads, and never replaces one.
	dir := t.TempDir()
	kf := filepath.Join(dir, "keyset.json")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"keyset", "new", "--out", kf}, envOf(nil), &out, &errb))
	require.Empty(t, out.String())
	fi, err := os.Stat(kf)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(kf)
	require.NoError(t, err)
	_, err = seal.Load(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	require.ErrorContains(t, run(context.Background(), []string{"keyset", "new", "--out", kf}, envOf(nil), &out, &errb), "never overwritten")
	rf := filepath.Join(dir, "keyset2.json")
	require.NoError(t, run(context.Background(), []string{"keyset", "rotate", "--out", rf}, envOf(map[string]string{"ENCLAVE_DATA_KEYSET_FILE": kf}), &out, &errb))
	fi, err = os.Stat(rf)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	// stdout redirected to a file (`> keyset.json`): the file is made 0600 too.
	sf, err := os.OpenFile(filepath.Join(dir, "redirected.json"), os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	require.NoError(t, sf.Chmod(0o644))
	errb.Reset()
	require.NoError(t, run(context.Background(), []string{"keyset", "new"}, envOf(nil), sf, &errb))
	require.NoError(t, sf.Close())
	fi, err = os.Stat(sf.Name())
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Contains(t, errb.String(), "mode 0600")

	out.Reset()
	env := map[string]string{"DATABASE_URL": dbtest.URL(t), "ENCLAVE_DATA_KEYSET": first}
	require.NoError(t, run(context.Background(), []string{"rekey"}, envOf(env), &out, &errb), "%s", errb.String())
	require.Contains(t, out.String(), "rekey: done")
	require.NotContains(t, out.String()+errb.String(), first[20:60], "the keyset is never printed")
}

func TestPurgeCommand(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	env := map[string]string{"DATABASE_URL": dbtest.URL(t)}
	require.Error(t, run(context.Background(), []string{"purge", "--dry-run"}, envOf(env), &out, &errb), "no ENCLAVE_RETENTION: nothing to purge")
	env["ENCLAVE_RETENTION"] = "1825d"
	require.NoError(t, run(context.Background(), []string{"purge", "--dry-run"}, envOf(env), &out, &errb), "%s", errb.String())
	require.Contains(t, out.String(), "would delete 0 verifications")
	require.NoError(t, run(context.Background(), []string{"purge"}, envOf(env), &out, &errb), "%s", errb.String())
	require.Contains(t, out.String(), "purge: older than 43800h0m0s, deleted 0 verifications")
}

func TestOperatorCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := envOf(map[string]string{"DATABASE_URL": dbtest.URL(t)})
	var out, errb bytes.Buffer
	require.NoError(t, run(ctx, []string{"operator", "add", "Alice", "--role", "analyst"}, env, &out, &errb), "%s", errb.String())
	m := regexp.MustCompile(`password \(shown this once\): (\S+)`).FindStringSubmatch(out.String())
	require.Len(t, m, 2, out.String())
	require.GreaterOrEqual(t, len(m[1]), 20, "a long generated password")
	require.Contains(t, out.String(), "operator alice added with role analyst")
	require.NoError(t, run(ctx, []string{"operator", "add", "--role", "viewer", "bob"}, env, &out, &errb), "flags before the name too")

	err := run(ctx, []string{"operator", "add", "alice", "--role", "analyst"}, env, &out, &errb)
	require.ErrorContains(t, err, "exists")
	var u usageError
	require.ErrorAs(t, run(ctx, []string{"operator", "add", "carol", "--role", "root"}, env, &out, &errb), &u)
	require.ErrorAs(t, run(ctx, []string{"operator", "add", "--role", "admin"}, env, &out, &errb), &u, "NAME is required")
	require.ErrorAs(t, run(ctx, []string{"operator", "remove", "alice"}, env, &out, &errb), &u)

	require.NoError(t, run(ctx, []string{"operator", "disable", "alice"}, env, &out, &errb))
	require.ErrorContains(t, run(ctx, []string{"operator", "disable", "nobody"}, env, &out, &errb), "no operator")
	out.Reset()
	require.NoError(t, run(ctx, []string{"operator", "list"}, env, &out, &errb))
	require.Regexp(t, `alice\s+analyst\s+disabled`, out.String())
	require.Regexp(t, `bob\s+viewer\s+active\s+.*never`, out.String())
	require.NotContains(t, out.String(), m[1], "the password is never shown again")

	require.NoError(t, run(ctx, []string{"operator", "role", "bob", "--role", "admin"}, env, &out, &errb))
	require.ErrorAs(t, run(ctx, []string{"operator", "role", "bob"}, env, &out, &errb), &u, "--role is required")
	require.ErrorContains(t, run(ctx, []string{"operator", "role", "bob", "--role", "viewer"}, env, &out, &errb), "last enabled admin")
	require.ErrorContains(t, run(ctx, []string{"operator", "disable", "bob"}, env, &out, &errb), "last enabled admin")
	out.Reset()
	require.NoError(t, run(ctx, []string{"operator", "list"}, env, &out, &errb))
	require.Regexp(t, `bob\s+admin\s+active`, out.String())
}

// TestUnknownVariableWarnsOrStops: a misspelled variable in the process's environment is named
// with the nearest known one on stderr; under ENCLAVE_STRICT_ENV=1 nothing starts. (Not
// parallel: it sets the process's environment, which is what the check reads.)
func TestUnknownVariableWarnsOrStops(t *testing.T) {
	t.Setenv("CHAINALYSIS_KYT_URL", "http://127.0.0.1:9/kyt")
	var out, errb bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, envOf(nil), &out, &errb))
	require.Contains(t, errb.String(), "CHAINALYSIS_KYT_URL is not a variable the enclave reads (did you mean CHAINALYSIS_KYT_API_URL?)")
	require.Contains(t, out.String(), "enclave ")

	t.Setenv("ENCLAVE_STRICT_ENV", "1")
	out.Reset()
	err := run(context.Background(), []string{"version"}, envOf(nil), &out, &errb)
	require.ErrorContains(t, err, "did you mean CHAINALYSIS_KYT_API_URL?")
	require.Empty(t, out.String(), "nothing ran")
}

// databaseWithAVerification returns the DSN of a database that holds a verifications table
// with one row, as a VASP's real database does, and a function counting its tables.
func databaseWithAVerification(t *testing.T) (dsn string, tables func() int) {
	dsn = emptyDatabase(t)
	db, err := sql.Open("postgres", dsn)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(`CREATE TABLE verifications (uuid uuid PRIMARY KEY); INSERT INTO verifications VALUES (gen_random_uuid())`)
	require.NoError(t, err)
	return dsn, func() int {
		var n int
		require.NoError(t, db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&n))
		return n
	}
}

// TestBenchRefusesADatabaseHoldingVerifications: given a database explicitly, the bench looks
// before it writes; one with verifications is refused without --force, and left untouched.
func TestBenchRefusesADatabaseHoldingVerifications(t *testing.T) {
	t.Parallel()
	dsn, tables := databaseWithAVerification(t)
	for _, args := range [][]string{
		{"bench", "--database-url", dsn, "--duration", "1s", "--calibration", "-1s"},
		{"bench", "--exchange", "--database-url", dsn, "--duration", "1s", "--calibration", "-1s"},
		{"bench", "--scale", "10", "--database-url", dsn},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, envOf(nil), &out, &errb)
		require.ErrorContains(t, err, "holds verifications already", "%v", args)
		require.ErrorContains(t, err, "--force")
		require.Equal(t, 1, tables(), "nothing was migrated into it")
	}
	err := run(context.Background(), []string{"bench", "--force"}, envOf(nil), &bytes.Buffer{}, &bytes.Buffer{})
	require.ErrorContains(t, err, "--force goes with --database-url")
}

// TestBenchIgnoresDATABASE_URL: DATABASE_URL is likely the enclave's own database; the bench
// starts a PostgreSQL of its own instead and leaves it alone.
func TestBenchIgnoresDATABASE_URL(t *testing.T) {
	et.Slow(t, "starts a PostgreSQL of its own and runs a short bench")
	t.Parallel()
	dsn, tables := databaseWithAVerification(t)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"bench", "--rate", "5", "--duration", "1s", "--warmup", "0s", "--calibration", "-1s"},
		envOf(map[string]string{"DATABASE_URL": dsn}), &out, &errb)
	require.NoError(t, err, "%s\n%s", out.String(), errb.String())
	require.Contains(t, out.String(), "starting a throwaway PostgreSQL")
	require.Equal(t, 1, tables(), "DATABASE_URL's database was not touched")
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	status := http.StatusServiceUnavailable
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		require.Equal(t, "/readyz", r.URL.Path)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	env := envOf(map[string]string{"ENCLAVE_LISTEN_ADDR": srv.Listener.Addr().String()})
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"healthcheck"}, env, &out, &errb)
	require.ErrorContains(t, err, "not ready: 503")
	require.Equal(t, 1, exitCode(err))
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	require.NoError(t, run(context.Background(), []string{"healthcheck"}, env, &out, &errb))
	require.Contains(t, out.String(), "ready")
	require.Error(t, run(context.Background(), []string{"healthcheck", "--url", "http://" + freeAddr(t) + "/readyz"}, env, &out, &errb), "nothing listens")

	require.Equal(t, "http://127.0.0.1:8080/readyz", readyzURL(""))
	require.Equal(t, "http://127.0.0.1:9000/readyz", readyzURL(":9000"))
	require.Equal(t, "http://127.0.0.1:9000/readyz", readyzURL("0.0.0.0:9000"))
	require.Equal(t, "http://[::1]:9000/readyz", readyzURL("[::1]:9000"))
}

// TestDevStory pastes the story `enclave dev` prints into bash, one command after another as a
// person would, without pausing between them: each step that must wait (the result before the
// next step reads it, the transfer processed before the wallet is re-rated, the counterparty
// UP or DOWN) waits by itself. The counterparty is UP, the account check VERIFIED, the alert
// raised later arrives through monitoring, and the counterparty stopped with SIGUSR1 shows DOWN,
// then UP again.
func TestDevStory(t *testing.T) {
	et.Slow(t, "runs dev and the whole printed story through bash and curl")
	t.Parallel()
	dir := devDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out et.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "--listen", "127.0.0.1:0", "--counterparty-listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "pgdata")},
			envOf(nil), &out, &out)
	}()
	for !strings.Contains(out.String(), "stops everything, PostgreSQL included.") {
		select {
		case err := <-done:
			t.Fatalf("dev exited: %v\n%s", err, out.String())
		case <-ctx.Done():
			t.Fatalf("no story printed:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	printed := out.String()
	var script []string
	for _, l := range strings.Split(printed[strings.Index(printed, "The stories, one command at a time"):], "\n") {
		if strings.HasPrefix(l, "   ") && !strings.HasPrefix(l, "    ") {
			script = append(script, strings.TrimSpace(l))
		}
	}
	require.Greater(t, len(script), 20, printed)
	sh := exec.CommandContext(ctx, "bash", "-c", strings.Join(script, "\n"))
	story, err := sh.CombinedOutput()
	require.NoError(t, err, "%s", story)
	s := string(story)
	require.Contains(t, s, `"vaspId":"`+devCounterparty+`"`)
	require.Contains(t, s, `"accountVerificationResult":"VERIFIED"`)
	require.Contains(t, s, `"accountVerificationResult":"ERROR","reason":"REQUEST-TIMEOUT"`, "the account check while the counterparty is stopped")
	require.Contains(t, s, `"result":"DENIED","reason":"BLACKLISTED"`)
	require.Contains(t, s, `"code":"UNSUPPORTED-RISK-ASSESSMENT"`)
	require.Contains(t, s, `"source":"MONITORING"`, "the alert came later, through monitoring")
	require.Equal(t, 2, strings.Count(s, `"health":"UP"`), "UP first, and UP again at the end:\n%s", s)
	require.Contains(t, s, `"health":"DOWN"`)
	// Step 15, over TRP to the counterparty's Travel Address: its txid delivered to the
	// counterparty named by the address's host.
	require.Contains(t, s, `"counterpartyVaspId":"localhost:`)
	require.Contains(t, s, `"kind":"TX_REPORT","status":"DELIVERED"`)
	require.Contains(t, printed, "TRP (OpenVASP Travel Rule Protocol")
	logs := out.String()
	require.Contains(t, logs, "[us] callback CHAINALYSIS_KYT_ALERT")
	require.Contains(t, logs, "[counterparty] Verify Account asked")
	require.NotContains(t, logs, "✗")

	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop within a minute of its context ending")
	}
}

// TestDevStopsWhenKilled: `go run ./cmd/enclave dev &` then `kill $!` sends SIGTERM to the go
// command, which does not pass it on; dev notices its go run is gone and stops, PostgreSQL
// included. The binary itself stops everything on SIGINT, and its PostgreSQL keeps the port of
// the first start (dev.json), so DATABASE_URL does not change.
func TestDevStopsWhenKilled(t *testing.T) {
	et.Slow(t, "runs dev through go run and as a binary, and kills them")
	t.Parallel()
	dir := devDir(t)
	args := []string{"dev", "--listen", "127.0.0.1:0", "--counterparty-listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "pgdata")}
	urlRE := regexp.MustCompile(`DATABASE_URL=(postgres://\S+@127\.0\.0\.1:(\d+)/\S+)`)
	pidRE := regexp.MustCompile(`SIGUSR1 to dev, process (\d+)`)

	// start runs cmd and waits for its story; it returns dev's DATABASE_URL port and pid.
	start := func(cmd *exec.Cmd) (out *et.SyncBuffer, port string, pid int) {
		out = &et.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cmd.Process.Kill() }) //nolint:errcheck // gone already when the test passed
		deadline := time.Now().Add(3 * time.Minute)
		for !strings.Contains(out.String(), "stops everything, PostgreSQL included.") {
			require.True(t, time.Now().Before(deadline), "no story printed:\n%s", out.String())
			time.Sleep(100 * time.Millisecond)
		}
		m := urlRE.FindStringSubmatch(out.String())
		require.NotNil(t, m, out.String())
		p := pidRE.FindStringSubmatch(out.String())
		require.NotNil(t, p, out.String())
		fmt.Sscan(p[1], &pid) //nolint:errcheck // matched digits
		return out, m[2], pid
	}
	// stopped waits until nothing listens on PostgreSQL's port and dev's process is gone.
	stopped := func(out *et.SyncBuffer, port string, pid int) {
		deadline := time.Now().Add(time.Minute)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
			if err == nil {
				c.Close()
			}
			_, alive := os.Stat(fmt.Sprintf("/proc/%d", pid))
			if err != nil && alive != nil {
				return
			}
			require.True(t, time.Now().Before(deadline), "dev (process %d) or its PostgreSQL (port %s) still runs a minute after the kill:\n%s", pid, port, out.String())
			time.Sleep(200 * time.Millisecond)
		}
	}

	goRun := exec.Command("go", append([]string{"run", "./cmd/enclave"}, args...)...)
	goRun.Dir = "../.."
	out, port, pid := start(goRun)
	require.NotEqual(t, goRun.Process.Pid, pid, "dev runs as go run's child")
	require.NoError(t, goRun.Process.Signal(syscall.SIGTERM)) // kill $!
	goRun.Wait()                                              //nolint:errcheck // killed
	stopped(out, port, pid)
	require.Contains(t, out.String(), "is gone")
	require.Contains(t, out.String(), "PostgreSQL: stopping")

	bin := filepath.Join(t.TempDir(), "enclave")
	build := exec.Command("go", "build", "-o", bin, "./cmd/enclave")
	build.Dir = "../.."
	b, err := build.CombinedOutput()
	require.NoError(t, err, "%s", b)
	again := exec.Command(bin, args...)
	out, port2, pid := start(again)
	require.Equal(t, port, port2, "the same DATABASE_URL at every start")
	require.NoError(t, again.Process.Signal(os.Interrupt))
	require.NoError(t, again.Wait(), "%s", out.String())
	stopped(out, port2, pid)
}

// TestOpenDBNeverShowsThePassword: whatever is wrong with DATABASE_URL, the error every command
// opening the database prints (app.OpenDB) names it and never carries the password. It lives
// here, not in internal/app, so that the suite links one test binary of the whole enclave less
// (about 7 CPU-s a run).
func TestOpenDBNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Pg-S3cret-Zq8v"
	for _, dsn := range []string{
		"postgres://enclave:" + pw + "@127.0.0.1:notaport/enclave",
		"postgres://enclave:" + pw + "%zz@127.0.0.1:5432/enclave",
		"postgres://enclave:Pg/S3cret-Zq8v@127.0.0.1:5432/enclave",
		"postgres://enclave:" + pw + "@127.0.0.1:1/enclave?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=enclave password=" + pw + " dbname=enclave sslmode=disable connect_timeout=2",
		"host=127.0.0.1 port=notaport password=" + pw,
	} {
		_, err := app.OpenDB(context.Background(), dsn, 1)
		if err == nil {
			t.Fatalf("OpenDB(%q) succeeded", dsn)
		}
		msg := err.Error()
		if !strings.Contains(msg, "DATABASE_URL") {
			t.Errorf("the error does not name DATABASE_URL: %s", msg)
		}
		for _, secret := range []string{pw, "Pg/S3cret-Zq8v", "S3cret"} {
			if strings.Contains(msg, secret) {
				t.Errorf("the error carries the password: %s", msg)
			}
		}
	}
}

// devDir is a temporary directory for dev's data that PostgreSQL, run as the postgres user
// when we are root, can reach.
func devDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	return dir
}
