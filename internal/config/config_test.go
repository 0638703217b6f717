package config

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/seal"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

var goodSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func TestDefaults(t *testing.T) {
	t.Parallel()
	ks, err := seal.New()
	require.NoError(t, err)
	c := Load(env(map[string]string{"DATABASE_URL": "postgres://x@h/db", "ENCLAVE_VASP_ID": "1", "ENCLAVE_API_KEYS": " a, ,b ",
		"CHAINALYSIS_KYT_API_KEY": "k", "ENCLAVE_CALLBACK_URL": "http://backend/cb", "ENCLAVE_CALLBACK_SECRET": goodSecret, "ENCLAVE_DATA_KEYSET": ks}))
	require.NoError(t, c.Validate(NeedServe))
	require.Equal(t, ":8080", c.ListenAddr)
	require.Equal(t, "https://api.chainalysis.com/api/kyt", c.KYTAPIURL)
	require.Equal(t, []string{"a", "b"}, c.APIKeys)
	require.Equal(t, 24*time.Hour, c.KYTMaxAge)
	require.Equal(t, 5*time.Minute, c.KYTPollMaxInterval)
	require.Equal(t, 1000, c.Workers, "sized for Chainalysis's latency, not for the database")
	require.Equal(t, 1000, c.CallbackWorkers)
	require.Equal(t, 10*time.Second, c.ChainalysisTimeout)
	require.Equal(t, 8, c.PipelineConnections)
	require.False(t, c.CallbackOnRegistered)
	require.Equal(t, "https://api.chainalysis.com/api/risk", c.RiskAPIURL)
	require.Equal(t, time.Minute, c.KYTMonitorInterval)
}

// TestEitherChainalysisKeyServes: serve needs the KYT key or the Address Screening key, not
// both; monitoring turns off with 0.
func TestEitherChainalysisKeyServes(t *testing.T) {
	t.Parallel()
	ks, err := seal.New()
	require.NoError(t, err)
	base := map[string]string{"DATABASE_URL": "postgres://x@h/db", "ENCLAVE_VASP_ID": "1", "ENCLAVE_API_KEYS": "a",
		"ENCLAVE_CALLBACK_URL": "http://backend/cb", "ENCLAVE_CALLBACK_SECRET": goodSecret, "ENCLAVE_DATA_KEYSET": ks}
	with := func(k, v string) map[string]string {
		m := map[string]string{k: v}
		for a, b := range base {
			m[a] = b
		}
		return m
	}
	require.ErrorContains(t, Load(env(base)).Validate(NeedServe), "CHAINALYSIS_KYT_API_KEY or CHAINALYSIS_RISK_API_KEY")
	require.NoError(t, Load(env(with("CHAINALYSIS_RISK_API_KEY", "r"))).Validate(NeedServe))
	require.NoError(t, Load(env(with("CHAINALYSIS_KYT_API_KEY", "k"))).Validate(NeedServe))
	off := Load(env(with("ENCLAVE_KYT_MONITOR_INTERVAL", "0")))
	require.Zero(t, off.KYTMonitorInterval)
	require.Equal(t, 30*time.Second, Load(env(with("ENCLAVE_KYT_MONITOR_INTERVAL", "30s"))).KYTMonitorInterval)
	require.ErrorContains(t, Load(env(with("ENCLAVE_KYT_MONITOR_INTERVAL", "often"))).Validate(0), "ENCLAVE_KYT_MONITOR_INTERVAL")
}

func TestValidateReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	c := Load(env(map[string]string{
		"CHAINALYSIS_KYT_API_URL": "ftp://nope", "ENCLAVE_CALLBACK_URL": "not a url",
		"ENCLAVE_CALLBACK_SECRET": "plain-secret-value", "ENCLAVE_PEERS_FILE": "/does/not/exist",
		"ENCLAVE_KYT_MAX_AGE": "forever", "ENCLAVE_WORKERS": "0", "ENCLAVE_PIPELINE_CONNECTIONS": "eight", "ENCLAVE_KYT_RATE_LIMIT": "-1", "ENCLAVE_CALLBACK_ON_REGISTERED": "maybe",
		"CHAINALYSIS_TIMEOUT": "-3s", "ENCLAVE_CALLBACK_WORKERS": "lots",
	}))
	require.ErrorContains(t, c.Validate(NeedServe), "enclave keyset new", "no keyset: says how to make one")
	err := c.Validate(NeedServe)
	require.Error(t, err)
	for _, v := range []string{"DATABASE_URL", "ENCLAVE_VASP_ID", "ENCLAVE_API_KEYS", "CHAINALYSIS_KYT_API_URL",
		"ENCLAVE_CALLBACK_URL", "ENCLAVE_CALLBACK_SECRET", "ENCLAVE_PEERS_FILE", "ENCLAVE_KYT_MAX_AGE", "ENCLAVE_WORKERS", "ENCLAVE_PIPELINE_CONNECTIONS",
		"ENCLAVE_KYT_RATE_LIMIT", "ENCLAVE_CALLBACK_ON_REGISTERED", "CHAINALYSIS_KYT_API_KEY", "CHAINALYSIS_TIMEOUT", "ENCLAVE_CALLBACK_WORKERS"} {
		require.Contains(t, err.Error(), v)
	}
	require.NotContains(t, err.Error(), "plain-secret-value")
	require.NoError(t, Load(env(map[string]string{"DATABASE_URL": "postgres://h/db"})).Validate(0), "a command that needs nothing more is satisfied")
}

func TestPeersFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "p"+string(rune('a'+len(s)%26))+".json")
		require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
		return p
	}
	good := write(`{"peers":[{"vaspId":"7","name":"Seven","url":"https://seven","secret":"` + goodSecret + `"}]}`)
	c := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": good}))
	require.NoError(t, c.Validate(0))
	p, ok := c.Peer("7")
	require.True(t, ok)
	require.Equal(t, "Seven", p.Name)
	_, ok = c.Peer("8")
	require.False(t, ok)

	bad := write(`{"peers":[{"vaspId":"7","secret":"whsec_short-secret-value"},{"vaspId":"7","secret":"` + goodSecret + `"}]}`)
	err := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": bad})).Validate(0)
	require.ErrorContains(t, err, "peers[0].secret")
	require.ErrorContains(t, err, "peers[1].vaspId")
	require.NotContains(t, err.Error(), "short-secret-value")
}

func TestLogValueHidesSecrets(t *testing.T) {
	t.Parallel()
	c := Load(env(map[string]string{
		"DATABASE_URL": "postgres://user:pw-secret@db:5432/enclave?sslmode=disable&password=x", "ENCLAVE_API_KEYS": "key-secret",
		"CHAINALYSIS_KYT_API_KEY": "kyt-secret", "ENCLAVE_CALLBACK_TOKEN": "token-secret", "ENCLAVE_CALLBACK_SECRET": goodSecret,
		"CHAINALYSIS_RISK_API_KEY": "risk-secret", "CHAINALYSIS_RISK_API_URL": "https://riskuser:RiskUrlPass@risk.internal/api/risk",
	}))
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	require.Contains(t, b.String(), `"riskApiKeySet":true`)
	for _, s := range []string{"pw-secret", "key-secret", "kyt-secret", "token-secret", goodSecret, "password=x", "risk-secret", "RiskUrlPass"} {
		require.NotContains(t, b.String(), s)
	}
	require.Contains(t, b.String(), "db:5432/enclave")
}

// TestURLCredentialsNeverShow: a URL with credentials, valid or not, appears in no problem
// and no log line with them.
func TestURLCredentialsNeverShow(t *testing.T) {
	t.Parallel()
	for _, e := range []map[string]string{
		{"CHAINALYSIS_KYT_API_URL": "http://kytuser:KytUrlPass-6677@kyt.internal/api/kyt", "ENCLAVE_CALLBACK_URL": "https://cb:CbUrlPass-8899@backend/cb?token=TokQuery-1122"},
		{"CHAINALYSIS_KYT_API_URL": "ftp://kytuser:KytUrlPass-6677@kyt.internal", "ENCLAVE_CALLBACK_URL": "cb:CbUrlPass-8899@backend"},
		{"CHAINALYSIS_RISK_API_URL": "ftp://kytuser:KytUrlPass-6677@risk.internal", "ENCLAVE_CALLBACK_URL": "cb:CbUrlPass-8899@backend"},
		{"CHAINALYSIS_KYT_API_URL": "http://kytuser:KytUrlPass-6677@kyt internal/%zz", "ENCLAVE_CALLBACK_URL": "http://[::1:CbUrlPass-8899@x"},
	} {
		c := Load(env(e))
		var b bytes.Buffer
		slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
		out := b.String()
		if err := c.Validate(NeedServe); err != nil {
			out += err.Error()
		}
		for _, secret := range []string{"KytUrlPass-6677", "CbUrlPass-8899", "TokQuery-1122"} {
			require.NotContains(t, out, secret)
		}
	}
}

// TestPeersFileIsReadStrictly: the mistakes that used to start silently with a peer that can
// never authenticate, or with none, are each a problem naming the field.
func TestPeersFileIsReadStrictly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, c := range []struct{ file, want string }{
		{`{"PEERS":[]}`, `unknown field "PEERS"`},
		{`{"peers":null}`, "peers must be an array"},
		{`{"peers":{}}`, "peers must be an array"},
		{`{"peers":[{"VASPID":"7","secret":"` + goodSecret + `"}]}`, "peers[0].VASPID: unknown field"},
		{`{"peers":[{"vaspId":"7 8","secret":"` + goodSecret + `"}]}`, "peers[0].vaspId \"7 8\" must be printable ASCII without spaces"},
		{`{"peers":[{"vaspId":"1","secret":"` + goodSecret + `"}]}`, "is our own VASP id"},
		{`{"peers":[{"vaspId":"..","secret":"` + goodSecret + `"}]}`, `peers[0].vaspId ".." must be printable ASCII`},
		{`{"peers":[{"vaspId":".","secret":"` + goodSecret + `"}]}`, `peers[0].vaspId "." must be printable ASCII`},
		{`{"peers":[{"vaspId":"a/b","secret":"` + goodSecret + `"}]}`, `peers[0].vaspId "a/b" must be printable ASCII`},
		{`{"peers":[{"vaspId":"a?b","secret":"` + goodSecret + `"}]}`, `peers[0].vaspId "a?b" must be printable ASCII`},
		{`{"peers":[{"vaspId":"7","url":"not a url","secret":"` + goodSecret + `"}]}`, "peers[0].url"},
		{`{"peers":[{"vaspId":7,"secret":"` + goodSecret + `"}]}`, "must be strings"},
		{`[]`, "not a JSON object"},
	} {
		p := filepath.Join(dir, fmt.Sprintf("p%d.json", i))
		require.NoError(t, os.WriteFile(p, []byte(c.file), 0o600))
		err := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": p, "ENCLAVE_VASP_ID": "1"})).Validate(0)
		require.ErrorContains(t, err, c.want, c.file)
		require.NotContains(t, err.Error(), goodSecret)
	}
	for _, id := range []string{"..", ".", "a/b", "a%2F", "a#b", strings.Repeat("7", 65)} {
		require.ErrorContains(t, Load(env(map[string]string{"ENCLAVE_VASP_ID": id})).Validate(0), "ENCLAVE_VASP_ID: must be a VASP id", id)
	}
	p := filepath.Join(dir, "empty.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"peers":[]}`), 0o600))
	c := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": p}))
	require.NoError(t, c.Validate(0), "no peers is allowed (serve warns)")
	require.Empty(t, c.Peers)
}

// TestDataKeyset: a keyset from the variable or a file; a broken one is a problem that never
// quotes it, and the log shows only whether one is set.
func TestDataKeyset(t *testing.T) {
	t.Parallel()
	ks, err := seal.New()
	require.NoError(t, err)
	p := filepath.Join(t.TempDir(), "keyset.json")
	require.NoError(t, os.WriteFile(p, []byte(ks), 0o600))
	c := Load(env(map[string]string{"ENCLAVE_DATA_KEYSET_FILE": p}))
	require.NoError(t, c.Validate(0))
	require.Equal(t, strings.TrimSpace(ks), c.DataKeyset)
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	require.Contains(t, b.String(), `"dataKeysetSet":true`)
	require.NotContains(t, b.String(), ks[10:40])

	broken := ks[:len(ks)/2] + "Secret-Material-123"
	err = Load(env(map[string]string{"ENCLAVE_DATA_KEYSET": broken})).Validate(0)
	require.ErrorContains(t, err, "ENCLAVE_DATA_KEYSET: not a Tink AEAD keyset")
	require.NotContains(t, err.Error(), "Secret-Material-123")
	require.ErrorContains(t, Load(env(map[string]string{"ENCLAVE_DATA_KEYSET": ks, "ENCLAVE_DATA_KEYSET_FILE": p})).Validate(0), "not both")
}

func TestRetention(t *testing.T) {
	t.Parallel()
	require.Zero(t, Load(env(nil)).Retention, "kept forever by default")
	require.Equal(t, 1825*24*time.Hour, Load(env(map[string]string{"ENCLAVE_RETENTION": "1825d"})).Retention)
	require.Equal(t, 720*time.Hour, Load(env(map[string]string{"ENCLAVE_RETENTION": "720h"})).Retention)
	for _, bad := range []string{"forever", "0d", "-5d", "5 days", "0s"} {
		require.ErrorContains(t, Load(env(map[string]string{"ENCLAVE_RETENTION": bad})).Validate(0), "ENCLAVE_RETENTION", bad)
	}
}
