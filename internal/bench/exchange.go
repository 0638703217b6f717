package bench

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/webhook"
)

// ExchangeOptions are the options of RunExchange: two enclaves doing the travel rule with each
// other, measured from the originator's POST /v1/verifications to its VERIFICATION_RESULT
// callback.
type ExchangeOptions struct {
	// DSN is the originator's migrated database, CounterpartyDSN the beneficiary's: two
	// databases, as two VASPs would have.
	DSN, CounterpartyDSN string
	// Rate is verifications created per second; Duration how long they are created and
	// measured, after Warmup at the same rate (counted as lost if they never complete, left out
	// of every other figure).
	Rate                int
	Duration, Warmup    time.Duration
	Concurrency         int
	VASPAPILatency      time.Duration // how long the beneficiary's Verify User API takes to answer
	PeerLatency         time.Duration // added to every request from one enclave to the other
	PeerWorkers         int           // ENCLAVE_PEER_WORKERS of each enclave; zero: the default
	CallbackWorkers     int           // ENCLAVE_CALLBACK_WORKERS; zero: the default
	PipelineConnections int           // ENCLAVE_PIPELINE_CONNECTIONS; zero: the default (8)
	Calibration         time.Duration // as Options.Calibration
	Drain               time.Duration // bounds the wait for the last results; default 2 min
	Log                 io.Writer     // both enclaves' warnings; nil discards them
	VerificationTimeout time.Duration // ENCLAVE_VERIFICATION_TIMEOUT; zero: the default (15 min)
}

// Floor is the least a verification can take: the message to the beneficiary's enclave, its
// VASP's answer, and the result back.
func (o ExchangeOptions) Floor() time.Duration { return 2*o.PeerLatency + o.VASPAPILatency }

// ExchangeResult is what RunExchange measured.
type ExchangeResult struct {
	// Calibration is as in Result.
	Calibration float64
	// Offered is the measured verifications due at Rate over Duration; Accepted those the
	// originator's API took, Refused the rest.
	Offered, Accepted, Refused int
	AcceptP50, AcceptP99       time.Duration
	// Completed counts measured verifications whose VERIFICATION_RESULT arrived (Verified of
	// them VERIFIED); CompletionRate is how many per second, first create to last result: the
	// throughput, which keeps up when it is close to Rate.
	Completed, Verified int
	CompletionRate      float64
	// P50, P95, P99 are create → VERIFICATION_RESULT.
	P50, P95, P99 time.Duration
	// Lost counts accepted verifications (warm-up included) with no VERIFICATION_RESULT after
	// the drain; LostIDs names the first of them.
	Lost    int
	LostIDs []string
	// Stages are the p50 of each step of the path, from both databases' timestamps (each a
	// transaction's start) and the bench's clock: where the time goes.
	Stages            [5]time.Duration
	Duplicates        int // callbacks delivered again (the same webhook-id)
	SignatureFailures int // callbacks or Verify User calls that did not verify
}

// RunExchange measures two enclaves end to end in one process: each on its own database and
// HTTP server, wired as serve wires them, each naming the other in its peers over real HTTP
// through a proxy that adds PeerLatency to every request; the beneficiary's VASP answers
// Verify User VERIFIED after VASPAPILatency; the originator's backend receives the callbacks.
func RunExchange(ctx context.Context, o ExchangeOptions) (ExchangeResult, error) {
	var res ExchangeResult
	if o.Rate <= 0 || o.Duration <= 0 || o.Concurrency <= 0 {
		return res, errors.New("bench: rate, duration and concurrency must be positive")
	}
	if o.DSN == "" || o.CounterpartyDSN == "" || o.DSN == o.CounterpartyDSN {
		return res, errors.New("bench: the exchange needs two databases, one for each enclave")
	}
	o.Drain = cmp.Or(o.Drain, 2*time.Minute)
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Calibration == 0 {
		o.Calibration = 2 * time.Second
	}
	if o.Calibration > 0 {
		var err error
		if res.Calibration, err = Calibrate(ctx, o.DSN, o.Concurrency, o.Calibration); err != nil {
			return res, err
		}
	}

	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-callback-secret-0123456789"))
	peerSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-peer-secret-0123456789abcd"))
	backends := [2]*vaspBackend{newVASPBackend(secret, o.VASPAPILatency), newVASPBackend(secret, o.VASPAPILatency)}
	defer backends[0].srv.Close()
	defer backends[1].srv.Close()
	// Each enclave's server first, unstarted, and a delaying proxy in front of it: each one's
	// peers file names the other's proxy.
	srvs := [2]*httptest.Server{httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)}
	var proxies [2]*httptest.Server
	for i := range 2 {
		proxies[i] = delayingProxy("http://"+srvs[i].Listener.Addr().String(), o.PeerLatency)
		defer proxies[i].Close()
	}
	ids := [2]string{ourVasp, theirVasp}
	dsns := [2]string{o.DSN, o.CounterpartyDSN}
	log := slog.New(slog.NewTextHandler(o.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var enclaves [2]*runningEnclave
	for i := range 2 {
		keyset, err := seal.New()
		if err != nil {
			return res, err
		}
		other := 1 - i
		cfg := config.Config{DatabaseURL: dsns[i], VaspID: ids[i], APIKeys: []string{apiKey}, DataKeyset: keyset,
			Peers:       []config.Peer{{VaspID: ids[other], Name: "Bench counterparty", URL: proxies[other].URL, Secret: peerSecret}},
			CallbackURL: backends[i].srv.URL + "/callbacks", CallbackSecret: secret, VerifyUserURL: backends[i].srv.URL + "/verify-user",
			VerificationTimeout: o.VerificationTimeout, PeerWorkers: o.PeerWorkers, CallbackWorkers: o.CallbackWorkers,
			PipelineConnections: cmp.Or(o.PipelineConnections, 8),
			KYTMaxAge:           time.Hour, ChainalysisTimeout: 10 * time.Second, ShutdownTimeout: 10 * time.Second}
		e, err := serveEnclave(ctx, cfg, log.With("enclave", ids[i]), srvs[i])
		if err != nil {
			return res, err
		}
		defer e.stop()
		enclaves[i] = e
	}
	base := srvs[0].URL
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.Concurrency * 2, MaxConnsPerHost: o.Concurrency * 2}}

	// Create at a fixed rate, open loop: one is due every 1/rate whether or not the previous
	// ones have answered (up to Concurrency in flight).
	type created struct {
		id      string
		at      time.Time
		latency time.Duration
		warmup  bool
	}
	var (
		mu      sync.Mutex
		acc     []created
		refused atomic.Int64
	)
	warm := int(float64(o.Rate) * o.Warmup.Seconds())
	n := warm + max(int(float64(o.Rate)*o.Duration.Seconds()), 1)
	res.Offered = n - warm
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	interval := time.Second / time.Duration(o.Rate)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			var out struct{ VerificationUUID string }
			err := post(ctx, hc, base+"/v1/verifications", exchangeBody(i), &out)
			lat := time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if i >= warm {
					refused.Add(1)
				}
				fmt.Fprintf(o.Log, "create failed: %v\n", err)
				return
			}
			acc = append(acc, created{id: out.VerificationUUID, at: t0, latency: lat, warmup: i < warm})
		}(i)
	}
	wg.Wait()
	res.Refused = int(refused.Load())

	// Wait for every result, warm-up's included.
	deadline := time.Now().Add(o.Drain)
	for time.Now().Before(deadline) && backends[0].count() < len(acc) {
		time.Sleep(50 * time.Millisecond)
	}
	got := backends[0].snapshot()
	var accepts, e2e []time.Duration
	var first, last time.Time
	sent := map[string]time.Time{}
	for _, c := range acc {
		if !c.warmup {
			sent[c.id] = c.at
			res.Accepted++
			accepts = append(accepts, c.latency)
		}
		r, ok := got[c.id]
		if !ok {
			res.Lost++
			if len(res.LostIDs) < 5 {
				res.LostIDs = append(res.LostIDs, c.id)
			}
			continue
		}
		if c.warmup {
			continue
		}
		res.Completed++
		if r.status == "VERIFIED" {
			res.Verified++
		}
		e2e = append(e2e, r.at.Sub(c.at))
		if first.IsZero() || c.at.Before(first) {
			first = c.at
		}
		if r.at.After(last) {
			last = r.at
		}
	}
	if res.Completed > 0 && last.After(first) {
		res.CompletionRate = float64(res.Completed) / last.Sub(first).Seconds()
	}
	res.AcceptP50, res.AcceptP99 = percentile(accepts, 0.5), percentile(accepts, 0.99)
	res.P50, res.P95, res.P99 = percentile(e2e, 0.5), percentile(e2e, 0.95), percentile(e2e, 0.99)
	if err := res.stages(ctx, enclaves[0].pools.API, enclaves[1].pools.API, sent, got); err != nil {
		return res, err
	}
	res.Duplicates = backends[0].duplicates()
	res.SignatureFailures = backends[0].badSignatures() + backends[1].badSignatures()
	return res, nil
}

// stages reads when each measured verification (created by the bench at sent) was created and
// answered on each side, and sets Stages from them and the results' arrival (got).
func (r *ExchangeResult) stages(ctx context.Context, ours, theirs *sqlx.DB, sent map[string]time.Time, got map[string]delivery) error {
	ids := make([]string, 0, len(sent))
	for id := range sent {
		ids = append(ids, id)
	}
	type row struct {
		UUID     string     `db:"uuid"`
		Created  time.Time  `db:"created_at"`
		ResultAt *time.Time `db:"result_at"`
	}
	read := func(db *sqlx.DB) (map[string]row, error) {
		var rows []row
		if err := db.SelectContext(ctx, &rows, `SELECT uuid, created_at, result_at FROM verifications WHERE uuid = ANY($1)`, ids); err != nil {
			return nil, fmt.Errorf("bench: read the exchange's times: %w", err)
		}
		m := make(map[string]row, len(rows))
		for _, x := range rows {
			m[x.UUID] = x
		}
		return m, nil
	}
	o, err := read(ours)
	if err != nil {
		return err
	}
	t, err := read(theirs)
	if err != nil {
		return err
	}
	var steps [5][]time.Duration
	for id, at := range sent {
		a, b, d := o[id], t[id], got[id]
		if a.ResultAt == nil || b.ResultAt == nil || d.at.IsZero() {
			continue
		}
		for i, x := range []time.Duration{a.Created.Sub(at), b.Created.Sub(a.Created), b.ResultAt.Sub(b.Created), a.ResultAt.Sub(*b.ResultAt), d.at.Sub(*a.ResultAt)} {
			steps[i] = append(steps[i], x)
		}
	}
	for i := range steps {
		r.Stages[i] = percentile(steps[i], 0.5)
	}
	return nil
}

// Print writes the result, the calibration on the same line as Result.Print writes it.
func (r ExchangeResult) Print(w io.Writer, o ExchangeOptions) {
	fmt.Fprintf(w, "enclave bench --exchange: %d verifications/s offered for %s after %s of warm-up, concurrency %d, two enclaves on two databases\n",
		o.Rate, o.Duration, o.Warmup, o.Concurrency)
	fmt.Fprintf(w, "  conditions:  every peer hop takes %s more, the beneficiary's Verify User API answers after %s\n", o.PeerLatency, o.VASPAPILatency)
	ratio := ""
	if r.Calibration > 0 {
		fmt.Fprintf(w, "  calibration: %.0f durable single-row INSERTs/s into this PostgreSQL at concurrency %d\n", r.Calibration, o.Concurrency)
		ratio = fmt.Sprintf(" (%.3f x calibration)", r.CompletionRate/r.Calibration)
	}
	fmt.Fprintf(w, "  created:     %d offered, %d accepted, %d refused; accept p50 %s, p99 %s\n", r.Offered, r.Accepted, r.Refused, ms(r.AcceptP50), ms(r.AcceptP99))
	fmt.Fprintf(w, "  completed:   %d of %d (%d VERIFIED) at %.0f verifications/s: %.2f x the offered rate%s\n",
		r.Completed, r.Offered, r.Verified, r.CompletionRate, r.CompletionRate/float64(o.Rate), ratio)
	floor := o.Floor()
	vsFloor := "-"
	if floor > 0 {
		vsFloor = fmt.Sprintf("%.2f", float64(r.P50)/float64(floor))
	}
	fmt.Fprintf(w, "  latency:     create->VERIFICATION_RESULT p50 %s, p95 %s, p99 %s; floor %s (2 x peer + Verify User); p50/floor %s\n",
		ms(r.P50), ms(r.P95), ms(r.P99), ms(floor), vsFloor)
	st := r.Stages
	fmt.Fprintf(w, "  p50 by step: create %s; to the beneficiary's enclave %s (peer %s); Verify User answered and stored %s (VASP %s); result back %s (peer %s); callback %s\n",
		ms(st[0]), ms(st[1]), ms(o.PeerLatency), ms(st[2]), ms(o.VASPAPILatency), ms(st[3]), ms(o.PeerLatency), ms(st[4]))
	fmt.Fprintf(w, "  callbacks:   %d duplicate deliveries, %d signature failures\n", r.Duplicates, r.SignatureFailures)
	fmt.Fprintf(w, "  lost:        %d\n", r.Lost)
}

// exchangeBody is the i-th verification: to the beneficiary VASP's customer, whose VASP
// returns her data.
func exchangeBody(i int) string {
	return fmt.Sprintf(`{"beneficiaryVaspId":%q,"requiredBeneficiaryInfo":"ACCOUNT_NUMBER,NATURAL_PERSON_NAME",
		"assetInfo":{"symbol":"ETH","network":"Ethereum","amount":"1.25"},"payload":{"ivms101":{
		"originator":{"accountNumber":["0x3d21a92285bf17cbdde5f77531b8b58ac400288a"]},
		"beneficiary":{"accountNumber":["0x%040x"]}}}}`, theirVasp, i+1)
}

// delayingProxy forwards every request to target after latency: one peer hop's network.
func delayingProxy(target string, latency time.Duration) *httptest.Server {
	u, _ := url.Parse(target)
	p := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 512
	p.Transport = t
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if latency > 0 {
			select {
			case <-time.After(latency):
			case <-r.Context().Done():
				return
			}
		}
		p.ServeHTTP(w, r)
	}))
}

// vaspBackend is one VASP's backend in the exchange bench: it answers Verify User VERIFIED
// (the wallet asked about, with a name) after its latency, and notes when each
// VERIFICATION_RESULT arrived. Every request's signature is checked.
type vaspBackend struct {
	srv     *httptest.Server
	secret  string
	latency time.Duration
	arrivals
}

func newVASPBackend(secret string, latency time.Duration) *vaspBackend {
	b := &vaspBackend{secret: secret, latency: latency}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	return b
}

func (b *vaspBackend) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	now := time.Now()
	if err := webhook.Verify(b.secret, req.Header, body); err != nil {
		b.refused()
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if req.URL.Path == "/verify-user" {
		b.verifyUser(w, req, body)
		return
	}
	cb, err := webhook.ParseBody(b.secret, req.Header, body)
	var d webhook.VerificationResultData
	if err == nil && cb.CallbackType == webhook.TypeVerificationResult {
		d, err = cb.VerificationResult()
	}
	if err != nil {
		b.refused()
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	b.arrived(cb.ID, d.VerificationUUID, delivery{at: now, status: d.Result})
	w.WriteHeader(http.StatusNoContent)
}

// verifyUser answers VERIFIED after the backend's latency, returning the wallet asked about.
func (b *vaspBackend) verifyUser(w http.ResponseWriter, req *http.Request, body []byte) {
	var q struct {
		IVMS101 struct {
			Beneficiary struct {
				AccountNumber []string `json:"accountNumber"`
			} `json:"beneficiary"`
		} `json:"ivms101"`
	}
	json.Unmarshal(body, &q) //nolint:errcheck // an empty account makes the enclave's check fail, which the figures show
	if b.latency > 0 {
		select {
		case <-time.After(b.latency):
		case <-req.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"result": "VERIFIED", "reason": "OK", "ivms101": map[string]any{"beneficiary": map[string]any{ //nolint:errcheck
		"beneficiaryPersons": []any{map[string]any{"naturalPerson": map[string]any{"name": []any{map[string]any{"nameIdentifier": []any{
			map[string]string{"primaryIdentifier": "Bench", "secondaryIdentifier": "Beneficiary", "nameIdentifierType": "LEGL"}}}}}}},
		"accountNumber": q.IVMS101.Beneficiary.AccountNumber}}})
}

// runningEnclave is an enclave the bench started; stop stops it.
type runningEnclave struct {
	pools app.Pools
	stop  func()
}

// serveEnclave wires an enclave on cfg's database as serve does, starts its workers and serves
// it on srv (unstarted, so that its address could be named before).
func serveEnclave(ctx context.Context, cfg config.Config, log *slog.Logger, srv *httptest.Server) (*runningEnclave, error) {
	pools, err := app.Open(ctx, cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		return nil, err
	}
	a, err := app.New(cfg, log, pools, app.Tuning{})
	if err != nil {
		pools.Close()
		return nil, err
	}
	if err := a.Start(ctx); err != nil {
		a.Close()
		pools.Close()
		return nil, err
	}
	srv.Config.Handler = a.Handler
	srv.Config.ReadHeaderTimeout = 5 * time.Second
	srv.Start()
	return &runningEnclave{pools: pools, stop: func() {
		srv.Close()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		a.StopAndCancel(sctx) //nolint:errcheck
		a.Close()
		pools.Close()
	}}, nil
}
