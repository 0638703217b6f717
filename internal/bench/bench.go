// Package bench measures the enclave as a VASP would run it, on one machine: the real HTTP
// server and River workers over PostgreSQL, kytsim with no processing delay as Chainalysis,
// and a receiver that verifies every callback's signature. It drives POST
// /v1/risk-assessment/chainalysis-kyt at a fixed rate and reports accept latency, end-to-end
// throughput and latency, Chainalysis calls per assessment, and lost assessments.
package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

// Options of a run.
type Options struct {
	// DSN names a migrated database, emptied of nothing: the run adds its own rows.
	DSN string
	// Rate is accept requests per second; Duration how long they are sent and measured.
	Rate     int
	Duration time.Duration
	// Warmup is how long requests are sent at Rate before the measured Duration: new database
	// and HTTP connections, cold caches and a pipeline starting from idle are not the steady
	// state the figures describe. Warm-up assessments must complete too (they count as lost
	// otherwise) but are left out of every other figure.
	Warmup time.Duration
	// Concurrency is how many requests may be in flight at once.
	Concurrency int
	// Workers is ENCLAVE_WORKERS; PipelineConnections, ENCLAVE_PIPELINE_CONNECTIONS.
	Workers, PipelineConnections int
	// TransferShare is the fraction of assessments that are TRANSFERs (the rest ATTEMPTs).
	TransferShare float64
	// Drain bounds the wait for the last callbacks.
	Drain time.Duration
	// Log receives the enclave's own logs (warnings and errors); nil discards them.
	Log io.Writer
}

// Result is what a run measured.
type Result struct {
	Accepted, Refused    int
	AcceptRate           float64 // achieved accept requests per second
	AcceptP50, AcceptP99 time.Duration
	Completed            int
	Processed, Errored   int
	EndToEndRate         float64 // assessments completed per second, first accept to last callback
	E2EP50, E2EP99       time.Duration
	Attempts, Transfers  int
	CallsPerAttempt      float64
	CallsPerTransfer     float64
	Lost                 int
	// PerSecond is the accept latency of each measured second, to tell a steady tail from a
	// burst.
	PerSecond              []Second
	DuplicateDeliveries    int
	SignatureFailures      int
	CallbacksNotYetArrived []string
}

// Second is the accept latency of one measured second.
type Second struct {
	N        int
	P50, P99 time.Duration
	Max      time.Duration
}

const (
	ourVasp, theirVasp = "15952089931162059995", "20000000000000000001"
	apiKey, kytKey     = "bench-api-key", "bench-kyt-key"
)

// Run performs one measurement.
func Run(ctx context.Context, o Options) (Result, error) {
	var res Result
	if o.Rate <= 0 || o.Duration <= 0 || o.Concurrency <= 0 {
		return res, errors.New("bench: rate, duration and concurrency must be positive")
	}
	if o.Drain <= 0 {
		o.Drain = 2 * time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-callback-secret-0123456789"))

	sim := kytsim.NewServer(kytsim.Options{APIKey: kytKey})
	defer sim.Close()
	rcv := newReceiver(secret)
	defer rcv.srv.Close()

	cfg := config.Config{DatabaseURL: "(given)", VaspID: ourVasp, APIKeys: []string{apiKey},
		KYTAPIURL: sim.URL, KYTAPIKey: kytKey, CallbackURL: rcv.srv.URL, CallbackSecret: secret,
		KYTMaxAge: time.Hour, KYTPollMaxInterval: time.Second, Workers: o.Workers, PipelineConnections: o.PipelineConnections,
		ShutdownTimeout: 10 * time.Second}
	pools, err := app.Open(ctx, o.DSN, o.PipelineConnections)
	if err != nil {
		return res, err
	}
	defer pools.Close()
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := app.New(cfg, log, pools, app.Tuning{})
	if err != nil {
		return res, err
	}
	if err := a.River.Start(ctx); err != nil {
		return res, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.River.StopAndCancel(sctx) //nolint:errcheck
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: a.Handler, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2, MaxConnsPerHost: o.Concurrency * 2}}

	// Verifications to assess: created before the clock starts. The first warm of them are
	// the warm-up's.
	warm := int(float64(o.Rate) * o.Warmup.Seconds())
	n := warm + max(int(float64(o.Rate)*o.Duration.Seconds()), 1)
	vs := make([]string, n)
	isTransfer := make([]bool, n)
	for i := range n {
		isTransfer[i] = int(float64(i+1)*o.TransferShare) > int(float64(i)*o.TransferShare) // spread evenly
		id, err := createVerification(ctx, hc, base, i, isTransfer[i])
		if err != nil {
			return res, fmt.Errorf("bench: prepare verification %d: %w", i, err)
		}
		vs[i] = id
	}
	simBefore := len(sim.Requests())

	// Accept at a fixed rate, open loop: a request is due every 1/rate whether or not the
	// previous ones have answered (up to Concurrency in flight).
	type accepted struct {
		id       string
		at       time.Time
		latency  time.Duration
		transfer bool
		warmup   bool
	}
	var (
		mu      sync.Mutex
		acc     []accepted
		refused atomic.Int64
	)
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			id, err := assess(ctx, hc, base, vs[i])
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused.Add(1)
				fmt.Fprintf(o.Log, "accept failed: %v\n", err)
				return
			}
			acc = append(acc, accepted{id: id, at: t0, latency: lat, transfer: isTransfer[i], warmup: i < warm})
		}(i)
	}
	wg.Wait()
	end := time.Now()
	measured := start.Add(time.Duration(warm) * interval) // when the first measured request was due
	var latencies []time.Duration
	perSecond := make([][]time.Duration, int(end.Sub(measured)/time.Second)+1)
	for _, a := range acc {
		if !a.warmup {
			latencies = append(latencies, a.latency)
			k := min(max(int(a.at.Sub(measured)/time.Second), 0), len(perSecond)-1)
			perSecond[k] = append(perSecond[k], a.latency)
		}
	}
	for _, l := range perSecond {
		if len(l) > 0 {
			res.PerSecond = append(res.PerSecond, Second{N: len(l), P50: percentile(l, 0.5), P99: percentile(l, 0.99), Max: percentile(l, 1)})
		}
	}
	res.Accepted, res.Refused = len(latencies), int(refused.Load())
	res.AcceptRate = float64(len(latencies)) / end.Sub(measured).Seconds()
	res.AcceptP50, res.AcceptP99 = percentile(latencies, 0.50), percentile(latencies, 0.99)

	// Wait for every terminal callback.
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) && rcv.terminalCount() < len(acc) {
		time.Sleep(50 * time.Millisecond)
	}
	got := rcv.snapshot()
	var e2e []time.Duration
	var first, last time.Time
	attempts, transfers := 0, 0 // warm-up included, as are its Chainalysis calls
	for _, a := range acc {
		if a.transfer {
			transfers++
		} else {
			attempts++
		}
		c, ok := got[a.id]
		if !ok {
			res.Lost++
			res.CallbacksNotYetArrived = append(res.CallbacksNotYetArrived, a.id)
			continue
		}
		if a.warmup {
			continue
		}
		if first.IsZero() || a.at.Before(first) {
			first = a.at
		}
		res.Completed++
		if c.status == webhook.StatusProcessed {
			res.Processed++
		} else {
			res.Errored++
		}
		e2e = append(e2e, c.at.Sub(a.at))
		if c.at.After(last) {
			last = c.at
		}
		if a.transfer {
			res.Transfers++
		} else {
			res.Attempts++
		}
	}
	if res.Completed > 0 {
		res.EndToEndRate = float64(res.Completed) / last.Sub(first).Seconds()
	}
	res.E2EP50, res.E2EP99 = percentile(e2e, 0.50), percentile(e2e, 0.99)
	res.DuplicateDeliveries, res.SignatureFailures = rcv.duplicates(), rcv.badSignatures()

	// Chainalysis calls, by kind of assessment.
	attemptCalls, transferCalls := 0, 0
	for _, r := range sim.Requests()[simBefore:] {
		if strings.Contains(r.Path, "withdrawal-attempts") {
			attemptCalls++
		} else if strings.Contains(r.Path, "transfers") {
			transferCalls++
		}
	}
	if attempts > 0 {
		res.CallsPerAttempt = float64(attemptCalls) / float64(attempts)
	}
	if transfers > 0 {
		res.CallsPerTransfer = float64(transferCalls) / float64(transfers)
	}
	return res, nil
}

// Print writes the result as a table.
func (r Result) Print(w io.Writer, o Options) {
	fmt.Fprintf(w, "enclave bench: %d assessments/s offered for %s after %s of warm-up, concurrency %d, %d workers, %d pipeline connections, %.0f%% TRANSFER\n",
		o.Rate, o.Duration, o.Warmup, o.Concurrency, o.Workers, o.PipelineConnections, o.TransferShare*100)
	fmt.Fprintf(w, "  accept:      %d accepted, %d refused, %.0f req/s, p50 %s, p99 %s\n",
		r.Accepted, r.Refused, r.AcceptRate, ms(r.AcceptP50), ms(r.AcceptP99))
	fmt.Fprintf(w, "  end to end:  %d completed (%d PROCESSED, %d ERROR) at %.0f assessments/s; accept->callback p50 %s, p99 %s\n",
		r.Completed, r.Processed, r.Errored, r.EndToEndRate, ms(r.E2EP50), ms(r.E2EP99))
	fmt.Fprintf(w, "  chainalysis: %.2f calls per ATTEMPT (minimum 2), %.2f per TRANSFER (minimum 3)\n", r.CallsPerAttempt, r.CallsPerTransfer)
	fmt.Fprintf(w, "  callbacks:   %d duplicate deliveries, %d signature failures\n", r.DuplicateDeliveries, r.SignatureFailures)
	fmt.Fprintf(w, "  lost:        %d\n", r.Lost)
}

// PrintPerSecond writes the accept latency of each measured second.
func (r Result) PrintPerSecond(w io.Writer) {
	for i, s := range r.PerSecond {
		fmt.Fprintf(w, "  second %2d:   %d accepted, p50 %s, p99 %s, max %s\n", i+1, s.N, ms(s.P50), ms(s.P99), ms(s.Max))
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func createVerification(ctx context.Context, hc *http.Client, base string, i int, transfer bool) (string, error) {
	addr := fmt.Sprintf("0x%040x", i+1)
	if i%10 == 0 {
		addr = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1" // every tenth is sanctioned
	}
	body := fmt.Sprintf(`{"beneficiaryVaspId":%q,"assetInfo":{"symbol":"ETH","amount":"1.25"},
		"payload":{"ivms101":{"beneficiary":{"accountNumber":[%q]}}}}`, theirVasp, addr)
	var out struct{ VerificationUUID string }
	if err := post(ctx, hc, base+"/v1/verifications", body, &out); err != nil {
		return "", err
	}
	if transfer {
		tx := fmt.Sprintf(`{"verificationUuid":%q,"txHash":"0x%064x"}`, out.VerificationUUID, i+1)
		if err := post(ctx, hc, base+"/v1/verifications/tx", tx, &struct{}{}); err != nil {
			return "", err
		}
	}
	return out.VerificationUUID, nil
}

func assess(ctx context.Context, hc *http.Client, base, id string) (string, error) {
	var out struct{ RequestID string }
	err := post(ctx, hc, base+"/v1/risk-assessment/chainalysis-kyt", fmt.Sprintf(`{"verificationUuid":%q}`, id), &out)
	return out.RequestID, err
}

func post(ctx context.Context, hc *http.Client, url, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// receiver is the VASP backend of the bench: it verifies each callback and notes when the
// terminal one of each assessment arrived.
type receiver struct {
	srv    *httptest.Server
	secret string

	mu      sync.Mutex
	done    map[string]delivery
	seenIDs map[string]int
	badSigs int
}

type delivery struct {
	at     time.Time
	status string
}

func newReceiver(secret string) *receiver {
	r := &receiver{secret: secret, done: map[string]delivery{}, seenIDs: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	cb, err := webhook.ParseBody(r.secret, req.Header, body)
	var d webhook.KYTResultData
	if err == nil {
		d, err = cb.KYTResult()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	r.seenIDs[cb.ID]++
	k := d.RiskAssessment.ChainalysisKYT
	if k.Final() {
		if _, dup := r.done[k.RequestID]; !dup {
			r.done[k.RequestID] = delivery{at: now, status: k.Status}
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) terminalCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.done)
}

func (r *receiver) snapshot() map[string]delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]delivery, len(r.done))
	for k, v := range r.done {
		out[k] = v
	}
	return out
}

func (r *receiver) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.seenIDs {
		n += c - 1
	}
	return n
}

func (r *receiver) badSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.badSigs
}
