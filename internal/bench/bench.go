// Package bench measures the enclave as a VASP would run it, on one machine: the real HTTP
// server and River workers over PostgreSQL, kytsim with no processing delay as Chainalysis
// (answering each call after a latency of choice, as the real one does in hundreds of
// milliseconds), and a receiver that verifies every callback's signature (answering after a
// latency of choice). It drives POST /v1/risk-assessment/chainalysis-kyt at a fixed rate and
// reports accept latency, screening and delivery throughput and latency, Chainalysis calls per
// assessment, and lost assessments.
//
// This machine's speed drifts 2-3x within a day, so every run first measures a calibration:
// the rate of durable single-row INSERTs its PostgreSQL takes at the run's concurrency. Each
// throughput is printed beside it as a ratio, which compares across hours where raw figures do
// not.
package bench

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/pglocal"
	"github.com/travelrule/enclave/internal/seal"
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
	// Workers is ENCLAVE_WORKERS; CallbackWorkers, ENCLAVE_CALLBACK_WORKERS;
	// PipelineConnections, ENCLAVE_PIPELINE_CONNECTIONS. Zero takes the enclave's default.
	Workers, CallbackWorkers, PipelineConnections int
	// KYTLatency is added to every Chainalysis call (kytsim's latency fault).
	KYTLatency time.Duration
	// ReceiverLatency is how long the receiver takes to answer each callback.
	ReceiverLatency time.Duration
	// Calibration is how long the calibration runs; default 2s, negative skips it.
	Calibration time.Duration
	// TransferShare is the fraction of assessments that are TRANSFERs (the rest ATTEMPTs).
	TransferShare float64
	// Drain bounds the wait for the last callbacks.
	Drain time.Duration
	// Log receives the enclave's own logs (warnings and errors); nil discards them.
	Log io.Writer
}

// Result is what a run measured.
type Result struct {
	// Calibration is the durable single-row INSERTs per second this PostgreSQL took at the
	// run's concurrency, measured just before the run.
	Calibration          float64
	Accepted, Refused    int
	AcceptRate           float64 // achieved accept requests per second
	AcceptP50, AcceptP99 time.Duration
	// Screened counts assessments terminal in the database; ScreenRate is how many per second
	// from the first measured accept to the last terminal state; Screen* is accept → terminal
	// (the database's own clock), by kind of assessment. Delivery plays no part in these.
	Screened                         int
	ScreenRate                       float64
	ScreenP50, ScreenP99             time.Duration
	ScreenAttemptP50, ScreenTransP50 time.Duration
	Completed                        int
	Processed, Errored               int
	EndToEndRate                     float64 // assessments completed per second, first accept to last callback
	E2EP50, E2EP99                   time.Duration
	Attempts, Transfers              int
	CallsPerAttempt                  float64
	CallsPerTransfer                 float64
	Lost                             int
	// PerSecond is the accept latency of each measured second, to tell a steady tail from a
	// burst.
	PerSecond              []Second
	DuplicateDeliveries    int
	SignatureFailures      int
	CallbacksNotYetArrived []string
	// Reads is how many GETs of one assessment were made while the load ran (a few a
	// second, of an assessment just accepted) and their latency: what a VASP's backend that
	// looks up an assessment meets at that load.
	Reads            int
	ReadP50, ReadP99 time.Duration
	ReadsFailed      int
	// CPU is the processor time spent from the first accept (warm-up included) to the last
	// callback, divided by the assessments accepted in that time: the bench process's (the
	// enclave, with the load generator, kytsim and the receiver, which run in it) and
	// PostgreSQL's (0 when its server is not on this machine).
	CPUProcess, CPUPostgres time.Duration
	PostgresMeasured        bool
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
	if o.Calibration == 0 {
		o.Calibration = 2 * time.Second
	}
	if o.Calibration > 0 {
		var err error
		if res.Calibration, err = Calibrate(ctx, o.DSN, o.Concurrency, o.Calibration); err != nil {
			return res, err
		}
	}

	e, err := startEnclave(ctx, o, secret)
	if err != nil {
		return res, err
	}
	defer e.close()
	sim, rcv, pools, base, hc := e.sim, e.rcv, e.pools, e.base, e.hc

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
	// Each verification sent the counterparty a message or two (the exchange); their delivery
	// is not the pipeline measured here, so it ends before the clock starts.
	if err := drainPeerLane(ctx, pools.API, o.Drain); err != nil {
		return res, err
	}
	cpu0, err := readCPU(ctx, pools.API)
	if err != nil {
		return res, err
	}

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
	var latest atomic.Value // the requestId last accepted, for the reader
	reads := startReader(ctx, hc, base, &latest)
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
			if i >= warm {
				latest.Store(id)
			}
		}(i)
	}
	wg.Wait()
	end := time.Now()
	res.Reads, res.ReadsFailed, res.ReadP50, res.ReadP99 = reads.stop()
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
	measuredIDs := make([]string, 0, len(acc))
	for _, a := range acc {
		if !a.warmup {
			measuredIDs = append(measuredIDs, a.id)
		}
	}
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) && rcv.count() < len(acc) {
		time.Sleep(50 * time.Millisecond)
	}
	cpu1, err := readCPU(ctx, pools.API)
	if err != nil {
		return res, err
	}
	if len(acc) > 0 {
		res.CPUProcess = (cpu1.process - cpu0.process) / time.Duration(len(acc))
		res.CPUPostgres = (cpu1.postgres - cpu0.postgres) / time.Duration(len(acc))
		res.PostgresMeasured = cpu0.postmaster != 0 && cpu0.postmaster == cpu1.postmaster
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
	if err := res.screening(ctx, pools.API, measuredIDs); err != nil {
		return res, err
	}

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

// enclave is one started for a run: the real HTTP server and River workers, kytsim as
// Chainalysis and the receiver of callbacks.
type enclave struct {
	sim   *kytsim.Server
	rcv   *receiver
	pools app.Pools
	base  string
	hc    *http.Client
	stops []func()
}

// close stops what startEnclave started, last first.
func (e *enclave) close() {
	for i := len(e.stops) - 1; i >= 0; i-- {
		e.stops[i]()
	}
}

// startEnclave wires the enclave on o.DSN as serve does, with River working.
func startEnclave(ctx context.Context, o Options, secret string) (_ *enclave, err error) {
	e := &enclave{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	e.sim = kytsim.NewServer(kytsim.Options{APIKey: kytKey, Faults: kytsim.Faults{LatencyMillis: int(o.KYTLatency.Milliseconds())}})
	e.stops = append(e.stops, e.sim.Close)
	e.rcv = newReceiver(secret, o.ReceiverLatency)
	e.stops = append(e.stops, e.rcv.srv.Close)

	// The counterparty's enclave: it acknowledges every verification and tx report sent to it,
	// so the exchange's messages cost what they cost in production.
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only acknowledged
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":true}`) //nolint:errcheck // the enclave retries what it does not get
	}))
	e.stops = append(e.stops, peer.Close)

	keyset, err := seal.New()
	if err != nil {
		return nil, err
	}
	cfg := config.Config{DatabaseURL: "(given)", VaspID: ourVasp, APIKeys: []string{apiKey}, DataKeyset: keyset,
		Peers:     []config.Peer{{VaspID: theirVasp, Name: "Bench counterparty", URL: peer.URL, Secret: secret}},
		KYTAPIURL: e.sim.URL, KYTAPIKey: kytKey, CallbackURL: e.rcv.srv.URL, CallbackSecret: secret,
		KYTMaxAge: time.Hour, KYTPollMaxInterval: time.Second, Workers: o.Workers, CallbackWorkers: o.CallbackWorkers,
		PipelineConnections: o.PipelineConnections, ChainalysisTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second}
	cfg.DatabaseURL = o.DSN
	srv := httptest.NewUnstartedServer(nil)
	r, err := serveEnclave(ctx, cfg, slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn})), srv)
	if err != nil {
		return nil, err
	}
	e.stops = append(e.stops, r.stop)
	e.pools, e.base = r.pools, srv.URL
	conns := max(o.Concurrency*2, 2)
	e.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	return e, nil
}

// screening reads, for the measured assessments, when each reached its terminal state.
func (r *Result) screening(ctx context.Context, db *sqlx.DB, ids []string) error {
	var rows []struct {
		APIType string    `db:"api_type"`
		Created time.Time `db:"created_at"`
		Updated time.Time `db:"updated_at"`
	}
	if err := db.SelectContext(ctx, &rows, `SELECT api_type, created_at, updated_at FROM kyt_results
		WHERE request_id = ANY($1) AND status IN ('PROCESSED', 'ERROR')`, ids); err != nil {
		return fmt.Errorf("bench: read screening times: %w", err)
	}
	var all, attempts, transfers []time.Duration
	var first, last time.Time
	for _, x := range rows {
		d := x.Updated.Sub(x.Created)
		all = append(all, d)
		if x.APIType == "ATTEMPT" {
			attempts = append(attempts, d)
		} else {
			transfers = append(transfers, d)
		}
		if first.IsZero() || x.Created.Before(first) {
			first = x.Created
		}
		if x.Updated.After(last) {
			last = x.Updated
		}
	}
	r.Screened = len(rows)
	if len(rows) > 0 {
		r.ScreenRate = float64(len(rows)) / last.Sub(first).Seconds()
	}
	r.ScreenP50, r.ScreenP99 = percentile(all, 0.5), percentile(all, 0.99)
	r.ScreenAttemptP50, r.ScreenTransP50 = percentile(attempts, 0.5), percentile(transfers, 0.5)
	return nil
}

// Calibrate measures how many durable single-row INSERTs per second PostgreSQL at dsn takes
// from concurrency clients, each committing its own row, for d: the unit the bench's
// throughputs are compared in.
func Calibrate(ctx context.Context, dsn string, concurrency int, d time.Duration) (float64, error) {
	db, err := app.OpenDB(ctx, dsn, concurrency)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_calibration (id bigserial PRIMARY KEY,
		at timestamptz NOT NULL DEFAULT now(), note text NOT NULL)`); err != nil {
		return 0, fmt.Errorf("bench: calibration: %w", err)
	}
	var n atomic.Int64
	var failed atomic.Value
	start := time.Now()
	stop := start.Add(d)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := db.ExecContext(ctx, `INSERT INTO bench_calibration (note) VALUES ($1)`, "calibration"); err != nil {
					failed.Store(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return 0, fmt.Errorf("bench: calibration: %w", err)
	}
	_, err = db.ExecContext(ctx, `TRUNCATE bench_calibration`)
	return float64(n.Load()) / time.Since(start).Seconds(), err
}

// Print writes the result as a table.
func (r Result) Print(w io.Writer, o Options) {
	fmt.Fprintf(w, "enclave bench: %d assessments/s offered for %s after %s of warm-up, concurrency %d, %d workers, %d callback workers, %d pipeline connections, %.0f%% TRANSFER\n",
		o.Rate, o.Duration, o.Warmup, o.Concurrency, o.Workers, o.CallbackWorkers, o.PipelineConnections, o.TransferShare*100)
	fmt.Fprintf(w, "  conditions:  Chainalysis answers each call after %s, the receiver after %s\n", o.KYTLatency, o.ReceiverLatency)
	ratio := func(rate float64) string {
		if r.Calibration <= 0 {
			return ""
		}
		return fmt.Sprintf(" (%.3f x calibration)", rate/r.Calibration)
	}
	if r.Calibration > 0 {
		fmt.Fprintf(w, "  calibration: %.0f durable single-row INSERTs/s into this PostgreSQL at concurrency %d\n", r.Calibration, o.Concurrency)
	}
	fmt.Fprintf(w, "  accept:      %d accepted, %d refused, %.0f req/s%s, p50 %s, p99 %s\n",
		r.Accepted, r.Refused, r.AcceptRate, ratio(r.AcceptRate), ms(r.AcceptP50), ms(r.AcceptP99))
	floor := ""
	if o.KYTLatency > 0 {
		floor = fmt.Sprintf("; Chainalysis floor %s / %s", ms(2*o.KYTLatency), ms(3*o.KYTLatency))
	}
	fmt.Fprintf(w, "  screened:    %d terminal at %.0f assessments/s%s; accept->terminal p50 %s, p99 %s; p50 ATTEMPT %s, TRANSFER %s%s\n",
		r.Screened, r.ScreenRate, ratio(r.ScreenRate), ms(r.ScreenP50), ms(r.ScreenP99), ms(r.ScreenAttemptP50), ms(r.ScreenTransP50), floor)
	fmt.Fprintf(w, "  delivered:   %d completed (%d PROCESSED, %d ERROR) at %.0f assessments/s%s; accept->callback p50 %s, p99 %s\n",
		r.Completed, r.Processed, r.Errored, r.EndToEndRate, ratio(r.EndToEndRate), ms(r.E2EP50), ms(r.E2EP99))
	if r.Reads > 0 || r.ReadsFailed > 0 {
		fmt.Fprintf(w, "  reads:       %d GETs of one assessment during the load, %d failed, p50 %s, p99 %s\n",
			r.Reads, r.ReadsFailed, ms(r.ReadP50), ms(r.ReadP99))
	}
	pg := "PostgreSQL not measured (its server is not on this machine)"
	total := r.CPUProcess
	if r.PostgresMeasured {
		pg = "PostgreSQL " + msPrecise(r.CPUPostgres)
		total += r.CPUPostgres
	}
	fmt.Fprintf(w, "  cpu:         %s per assessment: bench process %s (the enclave, and the load, kytsim and the receiver it also runs), %s\n",
		msPrecise(total), msPrecise(r.CPUProcess), pg)
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

func msPrecise(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// drainPeerLane waits until no message to a counterparty is PENDING.
func drainPeerLane(ctx context.Context, db *sqlx.DB, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		var n int
		if err := db.GetContext(ctx, &n, `SELECT count(*) FROM peer_messages WHERE status = 'PENDING'`); err != nil {
			return fmt.Errorf("bench: wait for the exchange's messages: %w", err)
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %d messages to the counterparty still PENDING after %s", n, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuReading is the processor time used so far by this process and by the PostgreSQL
// server behind db.
type cpuReading struct {
	process, postgres time.Duration
	postmaster        int
}

func readCPU(ctx context.Context, db *sqlx.DB) (cpuReading, error) {
	var r cpuReading
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return r, fmt.Errorf("bench: getrusage: %w", err)
	}
	r.process = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	var backend int
	if err := db.GetContext(ctx, &backend, `SELECT pg_backend_pid()`); err != nil {
		return r, fmt.Errorf("bench: read PostgreSQL's pid: %w", err)
	}
	if r.postmaster = pglocal.ParentPID(backend); r.postmaster != 0 {
		r.postgres = pglocal.ServerCPU(r.postmaster)
	}
	return r, nil
}

// reader GETs the assessment accepted last, a few times a second, while the load runs.
type reader struct {
	done      chan struct{}
	finished  chan struct{}
	latencies []time.Duration
	failed    int
}

func startReader(ctx context.Context, hc *http.Client, base string, latest *atomic.Value) *reader {
	r := &reader{done: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(r.finished)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-tick.C:
			}
			id, _ := latest.Load().(string)
			if id == "" {
				continue
			}
			t0 := time.Now()
			var out webhook.KYTResultData
			err := get(ctx, hc, base+"/v1/risk-assessment/chainalysis-kyt/"+id, &out)
			if err != nil || out.RiskAssessment.ChainalysisKYT.RequestID != id {
				r.failed++
				continue
			}
			r.latencies = append(r.latencies, time.Since(t0))
		}
	}()
	return r
}

// stop ends the reads and returns how many succeeded and failed, and their p50 and p99.
func (r *reader) stop() (int, int, time.Duration, time.Duration) {
	close(r.done)
	<-r.finished
	return len(r.latencies), r.failed, percentile(r.latencies, 0.5), percentile(r.latencies, 0.99)
}

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
	return call(ctx, hc, "POST", url, strings.NewReader(body), out)
}

func get(ctx context.Context, hc *http.Client, url string, out any) error {
	return call(ctx, hc, "GET", url, nil, out)
}

func call(ctx context.Context, hc *http.Client, method, url string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
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
// terminal one of each assessment arrived, then answers after its latency.
type receiver struct {
	srv     *httptest.Server
	secret  string
	latency time.Duration
	arrivals
}

type delivery struct {
	at     time.Time
	status string
}

// arrivals notes, for a bench's backend, the first arrival of what each measured item waits
// for, redeliveries of a callback (by webhook-id) and requests that did not verify.
type arrivals struct {
	mu      sync.Mutex
	done    map[string]delivery
	seenIDs map[string]int
	badSigs int
}

// arrived notes callback webhookID, which (when key is not empty) is what item key waits for.
func (a *arrivals) arrived(webhookID, key string, d delivery) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done == nil {
		a.done, a.seenIDs = map[string]delivery{}, map[string]int{}
	}
	a.seenIDs[webhookID]++
	if _, dup := a.done[key]; key != "" && !dup {
		a.done[key] = d
	}
}

// refused notes a request that did not verify.
func (a *arrivals) refused() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.badSigs++
}

func newReceiver(secret string, latency time.Duration) *receiver {
	r := &receiver{secret: secret, latency: latency}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.latency > 0 {
		select {
		case <-time.After(r.latency):
		case <-req.Context().Done():
			return
		}
	}
	now := time.Now()
	cb, err := webhook.ParseBody(r.secret, req.Header, body)
	var d webhook.KYTResultData
	if err == nil {
		d, err = cb.KYTResult()
	}
	if err != nil {
		r.refused()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if k := d.RiskAssessment.ChainalysisKYT; k.Final() {
		r.arrived(cb.ID, k.RequestID, delivery{at: now, status: k.Status})
	} else {
		r.arrived(cb.ID, "", delivery{})
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *arrivals) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.done)
}

func (a *arrivals) snapshot() map[string]delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]delivery, len(a.done))
	for k, v := range a.done {
		out[k] = v
	}
	return out
}

func (a *arrivals) duplicates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, c := range a.seenIDs {
		n += c - 1
	}
	return n
}

func (a *arrivals) badSignatures() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.badSigs
}
