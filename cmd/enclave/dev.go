package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/pglocal"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/seal"
)

// The dev enclave's identities and the story's data.
const (
	devVasp         = "10000000000000000001"
	devCounterparty = "20000000000000000002"
	devSanctioned   = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	devOurWallet    = "0x3d21a92285bf17cbdde5f77531b8b58ac400288a"
	devTxHash       = "0xe823c9b7895f9c47985c80e4611272f8194403e885c9cc603422cd609d738098"
	// The monitoring story: a transfer to the Address Screening example's clean private wallet,
	// identified as sanctioned after the transfer was processed.
	devLaterSanctioned = "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"
	devLaterTxHash     = "0x5b0f1c7e3d2a4f6e8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a"
	// The KYT guide's received transfer: 0.0000867 BTC to our address, from an OFAC-designated
	// sender.
	devDepositTx      = "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011"
	devDepositAddress = "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7"
	devDepositAmount  = "0.0000867"
)

const devEnv = `  DATABASE_URL             use this PostgreSQL instead of a local one under --data-dir
  CHAINALYSIS_KYT_API_URL  use this KYT API (with CHAINALYSIS_KYT_API_KEY) instead of kytsim in-process
  CHAINALYSIS_RISK_API_URL use this Address Screening API (with CHAINALYSIS_RISK_API_KEY) instead of kytsim
  ENCLAVE_CALLBACK_URL     send callbacks there (with ENCLAVE_CALLBACK_SECRET, ENCLAVE_CALLBACK_TOKEN)
                           instead of to the in-process receiver that prints them
  ENCLAVE_PEERS_FILE       more counterparty enclaves, beside the demo counterparty dev always has
`

// devState is what dev keeps beside its data, so that a second start serves the same keys
// to the data the first one left.
type devState struct {
	APIKey         string `json:"apiKey"`
	PeerSecret     string `json:"peerSecret"`
	CallbackSecret string `json:"callbackSecret"`
	CallbackToken  string `json:"callbackToken"`
	// DataKeyset seals the personal data dev stores (ENCLAVE_DATA_KEYSET): kept with the data,
	// or it could not be read again.
	DataKeyset string `json:"dataKeyset"`
}

func loadDevState(path string) (devState, bool, error) {
	var st devState
	b, err := os.ReadFile(path)
	if err == nil && json.Unmarshal(b, &st) == nil && st.APIKey != "" && st.PeerSecret != "" && st.CallbackSecret != "" && st.DataKeyset != "" {
		return st, true, nil
	}
	ks, err := seal.New()
	if err != nil {
		return st, false, err
	}
	if st.APIKey == "" || st.PeerSecret == "" || st.CallbackSecret == "" {
		st = devState{APIKey: randomKey(), PeerSecret: newSecret(), CallbackSecret: newSecret(), CallbackToken: randomKey()}
	}
	st.DataKeyset = ks
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { // dev.json itself is 0600
		return st, false, fmt.Errorf("dev: keep keys in %s: %w", path, err)
	}
	b, _ = json.MarshalIndent(st, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return st, false, fmt.Errorf("dev: keep keys in %s: %w", path, err)
	}
	return st, false, nil
}

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("dev", "Run a complete enclave on this machine with nothing to configure: a local PostgreSQL (kept\n"+
		"under --data-dir and reused), kytsim as Chainalysis KYT, a demo counterparty enclave, and a\n"+
		"receiver that verifies and prints every callback. Prints the API key, the counterparty's id and\n"+
		"secret, and curl commands for the whole story of both roles, ready to paste; --demo runs both\n"+
		"stories itself and exits 0 once every callback has arrived. Keys are kept in dev.json beside\n"+
		"the data directory, so the next start serves the same data with the same keys.", devEnv, stderr)
	listen := fs.String("listen", ":8080", "listen address of the enclave's API")
	dataDir := fs.String("data-dir", filepath.Join(".enclave", "pgdata"), "where the local PostgreSQL keeps its data (git-ignored); when\n"+
		"run as root and the postgres user cannot reach it, dev keeps the data under /var/tmp instead and says where")
	demo := fs.Bool("demo", false, "run both stories (ORIGINATOR: ATTEMPT, then TRANSFER; BENEFICIARY: the deposit) and exit")
	transferDelay := fs.Duration("transfer-delay", kytsim.DefaultOptions("").TransferDelay, "how long kytsim takes to process a transfer, as Chainalysis does")
	monitorInterval := fs.Duration("monitor-interval", 2*time.Second, "how often alerts raised later are pulled in (ENCLAVE_KYT_MONITOR_INTERVAL; short here so the story shows one)")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	say := func(format string, a ...any) {
		fmt.Fprintf(stdout, time.Now().Format("15:04:05")+" "+format+"\n", a...)
	}

	// The port first: a second dev finds it taken before touching the database.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s: %v; is another `enclave dev` running? Stop it, or pick another address with --listen", *listen, errors.Unwrap(err))
	}
	defer ln.Close()
	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		return err
	}
	st, kept, err := loadDevState(filepath.Join(filepath.Dir(abs), "dev.json"))
	if err != nil {
		return err
	}
	// Monitoring every 2 s, so an alert raised later shows within the story.
	cfg := config.Config{VaspID: devVasp, APIKeys: []string{st.APIKey}, DataKeyset: st.DataKeyset, KYTMaxAge: time.Hour, KYTPollMaxInterval: 2 * time.Second,
		KYTMonitorInterval: *monitorInterval,
		Workers:            100, CallbackWorkers: 100, PipelineConnections: 4, ChainalysisTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second,
		Peers: []config.Peer{{VaspID: devCounterparty, Name: "Dev counterparty", URL: "http://127.0.0.1:1", Secret: st.PeerSecret}}}
	if f := strings.TrimSpace(getenv("ENCLAVE_PEERS_FILE")); f != "" {
		more := config.Load(func(k string) string {
			if k == "ENCLAVE_PEERS_FILE" {
				return f
			}
			return ""
		})
		if err := more.Validate(0); err != nil {
			return err
		}
		cfg.Peers = append(cfg.Peers, more.Peers...)
	}

	// PostgreSQL.
	cfg.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if cfg.DatabaseURL == "" {
		dir := abs
		if err := pglocal.Reachable(dir); err != nil {
			dir = fallbackDataDir(abs)
			say("PostgreSQL: %v;", strings.TrimPrefix(err.Error(), "pglocal: "))
			say("  so its data is kept in %s instead (reused next time; --data-dir chooses another place)", dir)
		}
		say("PostgreSQL: starting a local server with data in %s…", dir)
		c, err := pglocal.Start(ctx, pglocal.Options{DataDir: dir, OnStale: func(string) {
			say("PostgreSQL: a server an earlier dev left running there is stopped first")
		}})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		defer func() {
			say("PostgreSQL: stopping")
			c.Stop() //nolint:errcheck // reported by pg_ctl itself
		}()
		cfg.DatabaseURL = c.URL("postgres")
		say("PostgreSQL: DATABASE_URL=%s (for psql, or `enclave serve`)", cfg.DatabaseURL)
	} else {
		say("PostgreSQL: using DATABASE_URL")
	}
	pools, err := app.Open(ctx, cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		return err
	}
	defer pools.Close()
	if _, err := schema.Migrate(ctx, pools.API.DB); err != nil {
		return err
	}

	// Chainalysis KYT and Address Screening: kytsim serves both, unless real ones are named.
	var sim *kytsim.Server
	kytURL, riskURL := strings.TrimSpace(getenv("CHAINALYSIS_KYT_API_URL")), strings.TrimSpace(getenv("CHAINALYSIS_RISK_API_URL"))
	if kytURL == "" || riskURL == "" {
		o := kytsim.DefaultOptions(randomKey())
		o.TransferDelay = *transferDelay
		sim = kytsim.NewServer(o)
		defer sim.Close()
		cfg.KYTAPIURL, cfg.KYTAPIKey = sim.URL+"/api/kyt", o.APIKey
		cfg.RiskAPIURL, cfg.RiskAPIKey = sim.URL+"/api/risk", o.APIKey
		say("Chainalysis: kytsim on %s (KYT under /api/kyt: transfers processed after %s, attempts at once; Address Screening under /api/risk)",
			sim.URL, o.TransferDelay)
		printKnownAddresses(stdout)
	}
	if kytURL != "" {
		cfg.KYTAPIURL, cfg.KYTAPIKey = kytURL, getenv("CHAINALYSIS_KYT_API_KEY")
		explicit := false
		fs.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "monitor-interval" })
		if !explicit { // a real KYT is not polled every 2 s
			cfg.KYTMonitorInterval = config.DefaultKYTMonitorInterval
		}
		say("Chainalysis KYT: %s (alerts raised later pulled in every %s)", kytURL, cfg.KYTMonitorInterval)
	}
	if riskURL != "" {
		cfg.RiskAPIURL, cfg.RiskAPIKey = riskURL, getenv("CHAINALYSIS_RISK_API_KEY")
		say("Chainalysis Address Screening: %s", riskURL)
	}

	// Callbacks.
	var rcv *devReceiver
	if u := strings.TrimSpace(getenv("ENCLAVE_CALLBACK_URL")); u != "" {
		cfg.CallbackURL, cfg.CallbackSecret, cfg.CallbackToken = u, getenv("ENCLAVE_CALLBACK_SECRET"), getenv("ENCLAVE_CALLBACK_TOKEN")
		say("Callbacks: %s", u)
	} else {
		cfg.CallbackSecret, cfg.CallbackToken = st.CallbackSecret, st.CallbackToken
		rcv = newDevReceiver(cfg.CallbackSecret, cfg.CallbackToken, stdout)
		defer rcv.Close()
		cfg.CallbackURL = rcv.URL()
		say("Callbacks: an in-process receiver on %s verifies and prints each one", cfg.CallbackURL)
	}
	if err := cfg.Validate(config.NeedServe); err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Polls from 250 ms (1 s in production): a kytsim transfer is answered as soon as it is
	// processed, which keeps the story brisk.
	a, err := app.New(cfg, log, pools, app.Tuning{KYT: kytjob.Config{Poll: retry.Backoff{Base: 250 * time.Millisecond}}})
	if err != nil {
		return err
	}
	if err := a.River.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer a.Close() // after River stops: the listener of Prefer: wait
	defer stopRiver(log, a, cfg.ShutdownTimeout)
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()

	base := "http://" + hostPort(ln.Addr())
	keyNote := "new, kept in " + filepath.Join(filepath.Dir(abs), "dev.json")
	if kept {
		keyNote = "the same as last time, from " + filepath.Join(filepath.Dir(abs), "dev.json")
	}
	fmt.Fprintf(stdout, "\nenclave dev is serving on %s\n  API key: %s (%s)\n  demo counterparty: VASP id %s, secret %s\n  we are VASP %s\n\n",
		base, st.APIKey, keyNote, devCounterparty, st.PeerSecret, devVasp)
	if err := printConsoleLogin(ctx, stdout, pools.API, base); err != nil {
		return err
	}
	if *demo {
		return runDemo(ctx, stdout, base, st, rcv, sim)
	}
	printStory(stdout, base, st, sim)
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(stdout, "\nstopping…")
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}

// fallbackDataDir is where dev keeps a cluster whose requested directory the postgres user
// cannot reach: one directory per requested path, so each clone keeps its own data, reused
// from one start to the next.
func fallbackDataDir(requested string) string {
	root := "/var/tmp"
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		root = os.TempDir()
	}
	sum := sha256.Sum256([]byte(requested))
	return filepath.Join(root, "enclave-dev", hex.EncodeToString(sum[:6]), "pgdata")
}

func hostPort(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if host == "::" || host == "0.0.0.0" || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// peerKeyHex is the HMAC key of a whsec_ secret, in hex, for openssl.
func peerKeyHex(secret string) string {
	b, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	return hex.EncodeToString(b)
}

// printStory prints both stories as commands to paste one by one into a POSIX shell: each
// sets the shell variables the next one uses, so nothing needs substituting by hand.
func printStory(w io.Writer, base string, st devState, sim *kytsim.Server) {
	inbound := uuid.NewString()
	rerate := "(a real KYT raises it when Chainalysis identifies the address; nothing to do here)"
	if sim != nil {
		rerate = fmt.Sprintf(`curl -s -X PUT %s/_sim/addresses/%s -H 'Token: %s' -d '{"category":"sanctioned entity","cluster":"OFAC SDN Demo Designation"}'; echo`,
			sim.URL, devLaterSanctioned, sim.Token())
	}
	fmt.Fprintf(w, `The whole story, one command at a time (paste into a shell; each sets what the next uses).

0. Set up: where the enclave is, its key, and a function that signs a request as the demo counterparty.
   ENCLAVE=%[1]s AUTH='Authorization: Bearer %[2]s'
   field() { sed -E 's/.*"'$1'":"([^"]+)".*/\1/'; }
   peer() { ID=msg_$(date +%%s%%N) TS=$(date +%%s); SIG=$(printf '%%s' "$ID.$TS.$2" | openssl dgst -sha256 -mac HMAC -macopt hexkey:%[3]s -binary | base64); curl -s $ENCLAVE$1 -H 'X-Vasp-Id: %[4]s' -H "webhook-id: $ID" -H "webhook-timestamp: $TS" -H "webhook-signature: v1,$SIG" -d "$2"; echo; }

We send (role ORIGINATOR)
1. Create a verification: we send 1.5 ETH to a sanctioned address.
   V=$(curl -s $ENCLAVE/v1/verifications -H "$AUTH" -d '{"beneficiaryVaspId":"%[4]s","assetInfo":{"symbol":"ETH","network":"Ethereum","amount":"1.5"},"payload":{"ivms101":{"originator":{"accountNumber":["%[5]s"]},"beneficiary":{"accountNumber":["%[6]s"]}}}}' | field verificationUuid); echo $V
2. Screen the withdrawal before sending it (a KYT withdrawal ATTEMPT); its callback is printed here.
   R=$(curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$V'"}' | field requestId); echo $R
3. Read the assessment (the same data as its callback).
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt/$R -H "$AUTH"; echo
4. Screen the beneficiary's wallet with Address Screening, waiting for the answer in the same call.
   curl -s -i $ENCLAVE/v1/risk-assessment/chainalysis-address-screening -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$V'"}'; echo
5. Report the on-chain transaction, then screen the TRANSFER (kytsim processes it after 2 s).
   curl -s $ENCLAVE/v1/verifications/tx -H "$AUTH" -d '{"verificationUuid":"'$V'","txHash":"%[7]s"}'; echo
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$V'"}'; echo

We receive (role BENEFICIARY)
6. The counterparty tells us of a deposit: 0.0000867 BTC to our address %[8]s.
   IN=%[9]s
   peer /peer/v1/verifications '{"verificationUuid":"'$IN'","originatingVaspId":"%[4]s","beneficiaryVaspId":"%[10]s","assetInfo":{"symbol":"BTC","amount":"%[11]s"},"payload":{"ivms101":{"originator":{"accountNumber":["1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH"]},"beneficiary":{"accountNumber":["%[8]s"]}}}}'
7. Before its tx report a deposit cannot be screened with KYT (400 UNSUPPORTED-RISK-ASSESSMENT); the originator's wallet can be, with Address Screening.
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$IN'"}'; echo
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-address-screening -H "$AUTH" -H 'Prefer: wait=10' -d '{"verificationUuid":"'$IN'"}'; echo
8. The counterparty reports its transaction; screen the deposit (a received TRANSFER): its sender is sanctioned.
   peer /peer/v1/verifications/tx '{"verificationUuid":"'$IN'","txHash":"%[12]s"}'
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$IN'"}'; echo

Monitoring (alerts Chainalysis raises later)
9. Send 0.2 ETH to a clean wallet, report it and screen the TRANSFER: no alert (its callback comes about 2 s later; wait for it).
   C=$(curl -s $ENCLAVE/v1/verifications -H "$AUTH" -d '{"beneficiaryVaspId":"%[4]s","assetInfo":{"symbol":"ETH","amount":"0.2"},"payload":{"ivms101":{"beneficiary":{"accountNumber":["%[13]s"]}}}}' | field verificationUuid); echo $C
   curl -s $ENCLAVE/v1/verifications/tx -H "$AUTH" -d '{"verificationUuid":"'$C'","txHash":"%[14]s"}'; echo
   curl -s $ENCLAVE/v1/risk-assessment/chainalysis-kyt -H "$AUTH" -d '{"verificationUuid":"'$C'"}'; echo
10. Chainalysis identifies that wallet as sanctioned (with kytsim: re-rate it); within --monitor-interval (2 s) a CHAINALYSIS_KYT_ALERT with the new alert is printed here. Then list the alerts and the counterparty's risk.
   %[15]s
   curl -s "$ENCLAVE/v1/risk-assessment/chainalysis-kyt/alerts?source=MONITORING" -H "$AUTH"; echo
   curl -s $ENCLAVE/v1/counterparties/%[4]s/chainalysis-kyt -H "$AUTH"; echo

11. Every callback and its delivery.
   curl -s $ENCLAVE/v1/callbacks -H "$AUTH"; echo

Ctrl-C stops everything.
`, base, st.APIKey, peerKeyHex(st.PeerSecret), devCounterparty, devOurWallet, devSanctioned, devTxHash,
		devDepositAddress, inbound, devVasp, devDepositAmount, devDepositTx, devLaterSanctioned, devLaterTxHash, rerate)
}

func randomKey() string {
	b := make([]byte, 18)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

func newSecret() string {
	b := make([]byte, 32)
	rand.Read(b) //nolint:errcheck
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
