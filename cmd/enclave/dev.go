package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/pglocal"
	"github.com/travelrule/enclave/webhook"
)

// The dev enclave's identities.
const (
	devVasp         = "10000000000000000001"
	devCounterparty = "20000000000000000002"
	devSanctioned   = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	devTxHash       = "0xe823c9b7895f9c47985c80e4611272f8194403e885c9cc603422cd609d738098"
)

const devEnv = `  DATABASE_URL             use this PostgreSQL instead of a local one under --data-dir
  CHAINALYSIS_KYT_API_URL  use this KYT API (with CHAINALYSIS_KYT_API_KEY) instead of kytsim in-process
  ENCLAVE_CALLBACK_URL     send callbacks there (with ENCLAVE_CALLBACK_SECRET, ENCLAVE_CALLBACK_TOKEN)
                           instead of to the in-process receiver that prints them
`

func runDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("dev", "Run a complete enclave on this machine with nothing to configure: a local PostgreSQL (kept\n"+
		"under --data-dir and reused), kytsim as Chainalysis KYT, and a receiver that verifies and prints\n"+
		"every callback. Prints an API key and curl commands for the whole story; --demo runs the story\n"+
		"itself and exits 0 once both callbacks have arrived.", devEnv, stderr)
	listen := fs.String("listen", ":8080", "listen address of the enclave's API")
	dataDir := fs.String("data-dir", filepath.Join(".enclave", "pgdata"), "where the local PostgreSQL keeps its data (git-ignored)")
	demo := fs.Bool("demo", false, "run the story (ATTEMPT, then TRANSFER after a tx report) and exit")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	// The port first: a second dev finds it taken before touching the database.
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("dev: cannot listen on %s: %v; is another `enclave dev` running? Stop it, or pick another address with --listen", *listen, errors.Unwrap(err))
	}
	defer ln.Close()
	apiKey := randomKey()
	cfg := config.Config{VaspID: devVasp, APIKeys: []string{apiKey}, KYTMaxAge: time.Hour, KYTPollMaxInterval: 2 * time.Second,
		Workers: 20, ShutdownTimeout: 10 * time.Second,
		Peers: []config.Peer{{VaspID: devCounterparty, Name: "Dev counterparty", URL: "http://127.0.0.1:1", Secret: newSecret()}}}

	// PostgreSQL.
	cfg.DatabaseURL = strings.TrimSpace(getenv("DATABASE_URL"))
	if cfg.DatabaseURL == "" {
		abs, err := filepath.Abs(*dataDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "PostgreSQL: starting a local server with data in %s\n", abs)
		c, err := pglocal.Start(ctx, pglocal.Options{DataDir: abs})
		if err != nil {
			return fmt.Errorf("dev: %w", err)
		}
		defer func() {
			fmt.Fprintln(stdout, "PostgreSQL: stopping")
			c.Stop() //nolint:errcheck // reported by pg_ctl itself
		}()
		cfg.DatabaseURL = c.URL("postgres")
	} else {
		fmt.Fprintln(stdout, "PostgreSQL: using DATABASE_URL")
	}
	pools, err := app.Open(ctx, cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		return err
	}
	defer pools.Close()
	if _, err := schema.Migrate(ctx, pools.API.DB); err != nil {
		return err
	}

	// Chainalysis KYT.
	if u := strings.TrimSpace(getenv("CHAINALYSIS_KYT_API_URL")); u != "" {
		cfg.KYTAPIURL, cfg.KYTAPIKey = u, getenv("CHAINALYSIS_KYT_API_KEY")
		fmt.Fprintf(stdout, "Chainalysis KYT: %s\n", u)
	} else {
		o := kytsim.DefaultOptions(randomKey())
		sim := kytsim.NewServer(o)
		defer sim.Close()
		cfg.KYTAPIURL, cfg.KYTAPIKey = sim.URL, o.APIKey
		fmt.Fprintf(stdout, "Chainalysis KYT: kytsim on %s (transfers processed after %s, attempts at once)\n", sim.URL, o.TransferDelay)
		printKnownAddresses(stdout)
	}

	// Callbacks.
	var rcv *devReceiver
	if u := strings.TrimSpace(getenv("ENCLAVE_CALLBACK_URL")); u != "" {
		cfg.CallbackURL, cfg.CallbackSecret, cfg.CallbackToken = u, getenv("ENCLAVE_CALLBACK_SECRET"), getenv("ENCLAVE_CALLBACK_TOKEN")
		fmt.Fprintf(stdout, "Callbacks: %s\n", u)
	} else {
		cfg.CallbackSecret, cfg.CallbackToken = newSecret(), randomKey()
		rcv = newDevReceiver(cfg.CallbackSecret, cfg.CallbackToken, stdout)
		defer rcv.Close()
		cfg.CallbackURL = rcv.URL()
		fmt.Fprintf(stdout, "Callbacks: an in-process receiver on %s verifies and prints each one\n", cfg.CallbackURL)
	}
	if err := cfg.Validate(config.NeedServe); err != nil {
		return err
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(cfg, log, pools, app.Tuning{})
	if err != nil {
		return err
	}
	if err := a.River.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer stopRiver(log, a, cfg.ShutdownTimeout)
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()

	base := "http://" + hostPort(ln.Addr())
	fmt.Fprintf(stdout, "\nenclave dev is serving on %s\nAPI key (shown once): %s\n\n", base, apiKey)
	if *demo {
		return runDemo(ctx, stdout, base, apiKey, rcv)
	}
	printStory(stdout, base, apiKey)
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

func hostPort(a net.Addr) string {
	host, port, _ := net.SplitHostPort(a.String())
	if host == "::" || host == "0.0.0.0" || host == "" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

func printStory(w io.Writer, base, key string) {
	h := fmt.Sprintf("-H 'Authorization: Bearer %s'", key)
	fmt.Fprintf(w, `The whole story, one command at a time:

1. Create a verification: we send 1.5 ETH to a sanctioned address.
   curl -s %[1]s/v1/verifications %[2]s -d '{"beneficiaryVaspId":"%[3]s","assetInfo":{"symbol":"ETH","network":"Ethereum","amount":"1.5"},"payload":{"ivms101":{"originator":{"accountNumber":["0x3d21a92285bf17cbdde5f77531b8b58ac400288a"]},"beneficiary":{"accountNumber":["%[4]s"]}}}}'
   export V=<verificationUuid from the answer>

2. Screen the withdrawal before sending it (a KYT withdrawal ATTEMPT); the callback is printed here.
   curl -s %[1]s/v1/risk-assessment/chainalysis-kyt %[2]s -d "{\"verificationUuid\":\"$V\"}"

3. Read the assessment (the same data as its callback).
   curl -s %[1]s/v1/risk-assessment/chainalysis-kyt/<requestId> %[2]s

4. Report the on-chain transaction, then screen the TRANSFER (its callback follows a few seconds later).
   curl -s %[1]s/v1/verifications/tx %[2]s -d "{\"verificationUuid\":\"$V\",\"txHash\":\"%[5]s\"}"
   curl -s %[1]s/v1/risk-assessment/chainalysis-kyt %[2]s -d "{\"verificationUuid\":\"$V\"}"

5. See every callback and its delivery.
   curl -s %[1]s/v1/callbacks %[2]s

Ctrl-C stops everything.
`, base, h, devCounterparty, devSanctioned, devTxHash)
}

// runDemo tells the story itself and returns once both callbacks have been printed.
func runDemo(ctx context.Context, w io.Writer, base, key string, rcv *devReceiver) error {
	call := func(path string, body any, out any) error {
		b, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("POST %s answered %d: %s", path, resp.StatusCode, raw)
		}
		return json.Unmarshal(raw, out)
	}
	var v struct{ VerificationUUID string }
	fmt.Fprintf(w, "demo 1/4: creating a verification: 1.5 ETH to the sanctioned address %s\n", devSanctioned)
	if err := call("/v1/verifications", map[string]any{
		"beneficiaryVaspId": devCounterparty,
		"assetInfo":         map[string]any{"symbol": "ETH", "network": "Ethereum", "amount": "1.5"},
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"accountNumber": []string{"0x3d21a92285bf17cbdde5f77531b8b58ac400288a"}},
			"beneficiary": map[string]any{"accountNumber": []string{devSanctioned}}}},
	}, &v); err != nil {
		return err
	}
	var r1, r2 struct{ RequestID string }
	fmt.Fprintf(w, "demo 2/4: screening the withdrawal ATTEMPT of verification %s\n", v.VerificationUUID)
	if err := call("/v1/risk-assessment/chainalysis-kyt", map[string]string{"verificationUuid": v.VerificationUUID}, &r1); err != nil {
		return err
	}
	if err := waitTerminal(ctx, w, base, key, rcv, r1.RequestID); err != nil {
		return err
	}
	fmt.Fprintf(w, "demo 3/4: reporting txHash %s\n", devTxHash)
	if err := call("/v1/verifications/tx", map[string]string{"verificationUuid": v.VerificationUUID, "txHash": devTxHash}, &struct{}{}); err != nil {
		return err
	}
	fmt.Fprintln(w, "demo 4/4: screening the TRANSFER")
	if err := call("/v1/risk-assessment/chainalysis-kyt", map[string]string{"verificationUuid": v.VerificationUUID}, &r2); err != nil {
		return err
	}
	if err := waitTerminal(ctx, w, base, key, rcv, r2.RequestID); err != nil {
		return err
	}
	fmt.Fprintln(w, "demo: done, both callbacks received")
	return nil
}

// waitTerminal waits for an assessment's terminal callback (or, when callbacks go elsewhere,
// for the assessment to be terminal), at most a minute.
func waitTerminal(ctx context.Context, w io.Writer, base, key string, rcv *devReceiver, requestID string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if rcv != nil && rcv.terminal(requestID) {
			return nil
		}
		if rcv == nil {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/risk-assessment/chainalysis-kyt/"+requestID, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				var d webhook.KYTResultData
				json.NewDecoder(resp.Body).Decode(&d) //nolint:errcheck
				resp.Body.Close()
				if k := d.RiskAssessment.ChainalysisKYT; k.Final() {
					fmt.Fprintf(w, "assessment %s is %s\n", requestID, k.Status)
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: assessment %s did not finish within a minute", requestID)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// devReceiver stands in for the VASP's backend: it checks each callback's signature and bearer
// token and prints it for a person to read.
type devReceiver struct {
	srv           *httptest.Server
	secret, token string
	out           io.Writer

	mu   sync.Mutex
	done map[string]bool
}

func newDevReceiver(secret, token string, out io.Writer) *devReceiver {
	r := &devReceiver{secret: secret, token: token, out: out, done: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *devReceiver) URL() string { return r.srv.URL + "/callbacks" }
func (r *devReceiver) Close()      { r.srv.Close() }

func (r *devReceiver) terminal(requestID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[requestID]
}

func (r *devReceiver) serve(w http.ResponseWriter, req *http.Request) {
	cb, err := webhook.Parse(r.secret, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || req.Header.Get("Authorization") != "Bearer "+r.token {
		fmt.Fprintf(r.out, "\n✗ callback refused: %v\n", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	d, err := cb.KYTResult()
	if err != nil {
		fmt.Fprintf(r.out, "\n✗ callback %s: %v\n", cb.CallbackType, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	k := d.RiskAssessment.ChainalysisKYT
	fmt.Fprintf(r.out, "\n── callback %s (webhook-id %s, signature verified) ──\n", cb.CallbackType, cb.ID)
	fmt.Fprintf(r.out, "  verification %s  request %s\n", d.VerificationUUID, k.RequestID)
	fmt.Fprintf(r.out, "  %s %s: %s %s on %s, address %s\n", k.APIType, k.Direction, k.Amount, k.Asset, k.Network, k.OutputAddress)
	if k.TransferRef != nil {
		fmt.Fprintf(r.out, "  transferRef %s\n", *k.TransferRef)
	}
	switch {
	case k.Error != nil:
		fmt.Fprintf(r.out, "  status %s: %s %s\n", k.Status, k.Error.Code, k.Error.Message)
	case k.AlertCount != nil:
		fmt.Fprintf(r.out, "  status %s, usdPrice %s, %d alert(s)\n", k.Status, deref(k.USDPrice), *k.AlertCount)
	default:
		fmt.Fprintf(r.out, "  status %s\n", k.Status)
	}
	for _, a := range d.RiskAssessment.ChainalysisKYTAlerts {
		fmt.Fprintf(r.out, "    %-6s %s: %s ($%s, %s)\n", a.AlertLevel, deref(a.EntityCategory), deref(a.ServiceName), a.AlertAmount, a.ExposureType)
	}
	if k.Final() {
		r.done[k.RequestID] = true
	}
	w.WriteHeader(http.StatusNoContent)
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
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
