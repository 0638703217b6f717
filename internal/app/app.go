// Package app wires the enclave: configuration in, an HTTP handler and a River client working
// the pipeline out. serve, dev, the end-to-end tests and the bench all build the enclave
// through New, so what they test is what runs.
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/pem"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivertype"

	"github.com/travelrule/enclave/api"
	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/console"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/logthrottle"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/retention"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/vaspapi"
	"github.com/travelrule/enclave/internal/verification"
)

// Tuning holds what tests and benchmarks change beyond the environment: shorter schedules,
// faster rescue of stuck jobs, seams to stop a worker at a chosen step. Production uses the
// zero value.
type Tuning struct {
	KYT              kytjob.Config
	Screening        screening.Config
	CallbackSchedule []time.Duration
	// CallbackTimeout bounds one delivery attempt; default 10s.
	CallbackTimeout time.Duration
	AfterSend       func(ctx context.Context, callbackID string)
	// Exchange shrinks the exchange's retries (tests); its VaspID, Peers and Timeout come from
	// the configuration.
	Exchange exchange.Config
	// RescueAfter is how long a job may run before River hands it to another worker; it must
	// exceed JobTimeout. Defaults: an assessment's run times out after 2 × CHAINALYSIS_TIMEOUT
	// + 5s (25s), a message to a counterparty's after its own timeout; jobs are rescued 5s after
	// the longest, so work left by a killed process resumes within about a minute (River's
	// rescuer looks every 30s). Callbacks are not River jobs: a claimed one is leased for the
	// callback timeout + 5s (15s) and due again after.
	RescueAfter time.Duration
	JobTimeout  time.Duration
	PollEvery   time.Duration
	// ProbeTimeout bounds one health probe of a counterparty; default exchange.DefaultProbeTimeout.
	ProbeTimeout time.Duration
}

// App is the enclave wired: the HTTP handler and the River client working the pipeline.
type App struct {
	Handler     http.Handler
	River       *river.Client[*sql.Tx]
	Assessments *kytjob.Service
	Screenings  *screening.Service
	Callbacks   *callback.Service
	Exchange    *exchange.Service
	// Directory lists the counterparties and their health.
	Directory *exchange.Directory
	// Waiter serves Prefer: wait; Close stops its listener.
	Waiter *assessment.Waiter
	// Console is the operator console, mounted under /console; Close stops its session cleanup.
	Console *console.Console
	// Metrics is the registry /metrics serves; the listener's figures join it
	// (httpserver.Limit).
	Metrics *prometheus.Registry
	// TRPHandler serves the TRP listener (ENCLAVE_TRP_LISTEN_ADDR), nil when TRP is not
	// configured; TRPTLS is its mTLS configuration, nil with ENCLAVE_TRP_INSECURE.
	TRPHandler http.Handler
	TRPTLS     *tls.Config
	jobs       *jobMetrics
}

// certPEM is our TRP certificate chain for GET /identity, as loaded for the listener; "" without
// one.
func certPEM(c *tls.Config) string {
	if c == nil || len(c.Certificates) == 0 {
		return ""
	}
	var b strings.Builder
	for _, der := range c.Certificates[0].Certificate {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	return b.String()
}

// Close releases what the App holds beyond its pools and River client: the listener of
// Prefer: wait and the console's session cleanup.
func (a *App) Close() {
	a.Waiter.Close()
	a.Console.Close()
}

// Start starts the background work: River's jobs and the delivery of callbacks. ctx is
// River's: cancelling it stops River as StopAndCancel would.
func (a *App) Start(ctx context.Context) error {
	if err := a.River.Start(ctx); err != nil {
		return err
	}
	a.Callbacks.Start(a.jobs.running.WithLabelValues(CallbackLane))
	return nil
}

// Stop stops taking new work and waits, until ctx is done, for the work running: jobs and
// deliveries it did not wait for are taken up again by the next process.
func (a *App) Stop(ctx context.Context) error {
	return errors.Join(a.Callbacks.Stop(ctx), a.River.Stop(ctx))
}

// StopAndCancel stops taking new work, cancels the work running and waits for it until ctx is
// done.
func (a *App) StopAndCancel(ctx context.Context) error {
	return errors.Join(a.Callbacks.StopAndCancel(ctx), a.River.StopAndCancel(ctx))
}

// New wires the enclave on its two pools. The River client is not started.
func New(cfg config.Config, log *slog.Logger, pools Pools, t Tuning) (*App, error) {
	db := pools.API
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db.DB, "enclave"))
	if pools.Pipeline != pools.API {
		metrics.MustRegister(collectors.NewDBStatsCollector(pools.Pipeline.DB, "enclave_pipeline"))
	}
	metrics.MustRegister(collectors.NewDBStatsCollector(pools.Delivery.DB, "enclave_delivery"))
	reg := network.Default()
	// One client per Chainalysis API configured; without a key its routes say it is not configured.
	var kyt, risk *chainalysis.Client
	var err error
	if cfg.KYTAPIKey != "" {
		if kyt, err = chainalysis.New(chainalysis.Options{BaseURL: cfg.KYTAPIURL, APIKey: cfg.KYTAPIKey, Timeout: cfg.ChainalysisTimeout,
			RateLimit: cfg.KYTRateLimit, Registerer: metrics}); err != nil {
			return nil, fmt.Errorf("CHAINALYSIS_KYT_API_URL: %w", err)
		}
	}
	if cfg.RiskAPIKey != "" {
		if risk, err = chainalysis.New(chainalysis.Options{BaseURL: cfg.RiskAPIURL, APIKey: cfg.RiskAPIKey, Timeout: cfg.ChainalysisTimeout,
			RateLimit: cfg.KYTRateLimit, Registerer: metrics}); err != nil {
			return nil, fmt.Errorf("CHAINALYSIS_RISK_API_URL: %w", err)
		}
	}
	callbacks, err := callback.NewService(db, pools.Delivery, callback.Config{URL: cfg.CallbackURL, Token: cfg.CallbackToken, Secret: cfg.CallbackSecret,
		Schedule: t.CallbackSchedule, Timeout: t.CallbackTimeout, AfterSend: t.AfterSend,
		Workers: cmp.Or(cfg.CallbackWorkers, config.DefaultCallbackWorkers), Poll: t.PollEvery}, log, metrics)
	if err != nil {
		return nil, err
	}
	jobs := newJobMetrics(db, metrics, callbacks.LaneStates)
	sealer, err := seal.Load(cfg.DataKeyset)
	if err != nil {
		return nil, fmt.Errorf("ENCLAVE_DATA_KEYSET: %w", err)
	}
	verifs := verification.NewService(db, reg, cfg.VaspID, sealer)
	newKeyUse(verifs.KeyUse, metrics)
	kc := t.KYT
	if kc.MaxAge == 0 {
		kc.MaxAge = cfg.KYTMaxAge
	}
	if kc.Poll.Cap == 0 {
		kc.Poll.Cap = cfg.KYTPollMaxInterval
	}
	kc.CallbackOnRegistered = kc.CallbackOnRegistered || cfg.CallbackOnRegistered
	kc.CallTimeout = cmp.Or(kc.CallTimeout, cfg.ChainalysisTimeout)
	assessments, err := kytjob.NewService(db, pools.Pipeline, verifs, reg, kyt, callbacks, kc, log, metrics)
	if err != nil {
		return nil, err
	}
	newMonitorLag(assessments.MonitorLag, metrics)

	sc := t.Screening
	sc.MaxAge = cmp.Or(sc.MaxAge, cfg.KYTMaxAge)
	sc.CallTimeout = cmp.Or(sc.CallTimeout, cfg.ChainalysisTimeout)
	screenings, err := screening.NewService(db, pools.Pipeline, verifs, risk, callbacks, sc, log, metrics)
	if err != nil {
		return nil, err
	}

	var vasp *vaspapi.Client
	if cfg.VerifyUserURL != "" || cfg.VerifyAccountURL != "" || cfg.TxStatusURL != "" {
		vasp = vaspapi.New(vaspapi.Config{VerifyUserURL: cfg.VerifyUserURL, VerifyAccountURL: cfg.VerifyAccountURL, TxStatusURL: cfg.TxStatusURL,
			Token: cfg.CallbackToken, Secret: cfg.CallbackSecret, Timeout: cfg.VASPAPITimeout})
	}
	xc := t.Exchange
	xc.VaspID, xc.Timeout = cfg.VaspID, cmp.Or(cfg.VerificationTimeout, xc.Timeout)
	xc.Peers = func(id string) (exchange.Peer, bool) {
		p, ok := cfg.Peer(id)
		return exchange.Peer{VaspID: p.VaspID, Name: p.Name, URL: p.URL, Secret: p.Secret, TRP: p.TRP()}, ok
	}
	if problems := cfg.CheckTRP(); len(problems) > 0 {
		return nil, errors.New("configuration: " + strings.Join(problems, "; "))
	}
	trpServerTLS, trpClientTLS, err := cfg.TRPTLS()
	if err != nil {
		return nil, err
	}
	xc.VaspName, xc.TRPInsecure = cfg.VASPName, cfg.TRPInsecure
	if cfg.TRPEnabled() {
		xc.TRPURL = cfg.TRPURL
	}
	if trpClientTLS != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = trpClientTLS
		xc.TRPClient = &http.Client{Transport: tr}
	}
	xchg, err := exchange.NewService(db, pools.Pipeline, verifs, callbacks, vasp, xc, log, metrics)
	if err != nil {
		return nil, err
	}

	dir := newDirectory(cfg, pools, t, xc.TRPClient, metrics, log)
	checks, err := exchange.NewChecks(xchg, vasp, cfg.VASPAPITimeout, log, metrics)
	if err != nil {
		return nil, err
	}

	workers := river.NewWorkers()
	xchg.AddWorkers(workers)
	dir.AddWorkers(workers)
	assessments.AddWorkers(workers)
	screenings.AddWorkers(workers)
	purge := &retention.PurgeWorker{}
	river.AddWorker(workers, purge)
	var periodic []*river.PeriodicJob
	if cfg.Retention > 0 {
		if purge.P, err = retention.NewPurger(pools.Pipeline, cfg.Retention, log, metrics); err != nil {
			return nil, err
		}
		// Hourly, on River's leader only: one purge at a time across replicas.
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return retention.PurgeArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	if len(cfg.Peers) > 0 && cfg.PeerProbeInterval > 0 {
		// On River's leader only, and unique while unfinished: one probe at a time across replicas.
		periodic = append(periodic, dir.PeriodicJob())
	}
	if cfg.KYTMonitorInterval > 0 && kyt != nil {
		// On River's leader only, and unique while unfinished: one sync at a time across replicas.
		periodic = append(periodic, river.NewPeriodicJob(river.PeriodicInterval(cfg.KYTMonitorInterval),
			func() (river.JobArgs, *river.InsertOpts) { return kytjob.MonitorArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true}))
	}
	// Every job kind sets its own timeout; this one is for River's bookkeeping, and River
	// rescues a job of a dead process once the longest of them has passed.
	jobTimeout := cmp.Or(t.JobTimeout, max(assessments.RunTimeout(), screenings.RunTimeout(), xchg.JobTimeout()))
	rc, err := river.NewClient[*sql.Tx](pollOnly{riverdatabasesql.New(db.DB)}, &river.Config{
		// Two lanes here: assessments on the default queue and the exchange with counterparties
		// on its own, each with its own workers, so neither holds the other back. Callbacks
		// have a third lane, not River's: the callbacks rows themselves (callback.Service).
		Queues: map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: cmp.Or(cfg.Workers, config.DefaultWorkers)},
			exchange.Queue:     {MaxWorkers: cmp.Or(cfg.PeerWorkers, config.DefaultPeerWorkers)},
		},
		Workers:              workers,
		PeriodicJobs:         periodic,
		Middleware:           []rivertype.Middleware{jobs.middleware()},
		FetchPollInterval:    cmp.Or(t.PollEvery, 20*time.Millisecond),
		FetchCooldown:        10 * time.Millisecond,
		JobTimeout:           jobTimeout,
		RescueStuckJobsAfter: cmp.Or(t.RescueAfter, jobTimeout+5*time.Second),
		// River's own info lines ("Driver does not support listener" at every start) say nothing
		// an operator acts on; its warnings and errors are kept, each repeated one at most once
		// per 30 s: while the database is down it fails a fetch fifty times a second per queue.
		Logger: slog.New(atLeast{logthrottle.New(log.Handler(), 30*time.Second, slog.LevelWarn), slog.LevelWarn}).With("component", "river"),
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	assessments.Attach(rc)
	screenings.Attach(rc)
	xchg.Attach(rc)

	dsn := cfg.DatabaseURL
	waiter := assessment.NewWaiter(func(ctx context.Context) (*pgx.Conn, error) {
		cc, err := parseDSN(dsn)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return nil, unreachable(err, dsn)
		}
		return conn, nil
	}, log)

	cons, err := console.New(console.Deps{Log: log, DB: db, Verifications: verifs, Assessments: assessments, Screenings: screenings,
		Callbacks: callbacks, Exchange: xchg, Directory: dir, Sealer: sealer, Peers: cfg.Peers})
	if err != nil {
		return nil, err
	}
	handler := api.NewHandler(api.Deps{
		Log: log, Config: cfg, Metrics: metrics, Waiter: waiter, Console: cons,
		Verifications: verifs, Assessments: assessments, Screenings: screenings, Callbacks: callbacks, Exchange: xchg,
		Directory: dir, Checks: checks,
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if err := db.PingContext(ctx); err != nil {
				return err
			}
			return schema.Check(ctx, db.DB)
		},
	})
	var trpHandler http.Handler
	if cfg.TRPEnabled() {
		trpHandler = api.NewTRPHandler(api.TRPDeps{Log: log.With("listener", "trp"), Exchange: xchg, Name: cmp.Or(cfg.VASPName, cfg.VaspID),
			CertPEM: certPEM(trpServerTLS), MinBodyRate: cfg.HTTPMinBodyRate, Started: time.Now()})
	}
	return &App{jobs: jobs, Handler: handler, TRPHandler: trpHandler, TRPTLS: trpServerTLS, River: rc, Assessments: assessments, Screenings: screenings, Callbacks: callbacks, Exchange: xchg, Waiter: waiter,
		Directory: dir, Console: cons, Metrics: metrics}, nil
}

// atLeast drops records below min.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler { return atLeast{h.Handler.WithAttrs(a), h.min} }
func (h atLeast) WithGroup(n string) slog.Handler      { return atLeast{h.Handler.WithGroup(n), h.min} }

// pollOnly is River's database/sql driver without NOTIFY. database/sql cannot LISTEN, so River
// polls for jobs and no process ever hears a notification; yet the driver would still send a
// pg_notify with the first job inserted in each FetchCooldown (10 ms) — one more round trip inside the
// accept transaction, and a commit that takes PostgreSQL's cluster-wide notification lock.
// Tried and reverted (2026-12-02): River's pgx listener beside this driver, with pg_notify on
// insert and a 100 ms poll, cut an idle enclave's fetch cost about 5x, but `enclave bench
// --exchange --rate 100` (three back-to-back pairs) completed 0.82/0.99/0.79x of the offered
// rate against 0.98/0.98/0.93x polling every 20 ms, collapsing when PostgreSQL was slowest.
type pollOnly struct{ *riverdatabasesql.Driver }

// SupportsListenNotify is false: see pollOnly.
func (pollOnly) SupportsListenNotify() bool { return false }

// Pools are the enclave's connection pools to its database. The API — and River's own
// fetching and bookkeeping — use one; the assessment workers share another, of
// ENCLAVE_PIPELINE_CONNECTIONS; the delivery lane has a small one of its own. However many jobs
// are running, an accept neither waits for a connection behind them nor competes in PostgreSQL
// with more than that many of their statements; and a burst of screenings, which fills the
// pipeline pool, never leaves deliveries waiting for a connection. Measured with enclave bench
// on 2 cores at 500 assessments/s and 30 workers: one pool of 45 gave accept p99 11-20 ms; a
// pipeline pool of 8, 10-13 ms (see README).
type Pools struct {
	API, Pipeline, Delivery *sqlx.DB
}

// APIConnections is the size of the API's pool: HTTP requests in flight and River's producer,
// completer and maintenance services.
const APIConnections = 20

// DeliveryConnections is the size of the delivery lane's pool: deliveries read and record
// callbacks in batches (internal/batch), so a few connections serve a thousand deliveries.
const DeliveryConnections = 4

// Open opens the pools on dsn, the pipeline's of pipelineConns connections.
func Open(ctx context.Context, dsn string, pipelineConns int) (Pools, error) {
	var p Pools
	var err error
	for _, o := range []struct {
		db    **sqlx.DB
		conns int
	}{{&p.API, APIConnections}, {&p.Pipeline, pipelineConns}, {&p.Delivery, DeliveryConnections}} {
		if *o.db, err = OpenDB(ctx, dsn, o.conns); err != nil {
			p.Close()
			return Pools{}, err
		}
	}
	return p, nil
}

// Close closes the pools.
func (p Pools) Close() error {
	var errs []error
	for _, db := range []*sqlx.DB{p.API, p.Pipeline, p.Delivery} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

// OpenDB connects to PostgreSQL and checks it answers, naming DATABASE_URL (never its value,
// which may hold a password) when it does not.
//
// The driver is pgx, through database/sql (River's database/sql driver is tested on it). pgx
// prepares each statement once per connection and then only binds and executes it, where
// lib/pq sent every query to be parsed and planned anew: planning was 28-35% of PostgreSQL's
// statement time per assessment (pg_stat_statements, issue 9), River's statements most of it.
func OpenDB(ctx context.Context, dsn string, conns int) (*sqlx.DB, error) {
	cc, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(stdlib.OpenDB(*cc), "pgx")
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, unreachable(err, dsn)
	}
	return db, nil
}

// parseDSN reads DATABASE_URL, naming it (never its value, which may hold a password) when it
// is not a DSN.
func parseDSN(dsn string) (*pgx.ConnConfig, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("DATABASE_URL is not a valid PostgreSQL DSN: " + redact(err.Error(), dsn))
	}
	return cc, nil
}

// unreachable says the database at DATABASE_URL did not answer, without its password.
func unreachable(err error, dsn string) error {
	return errors.New("cannot reach the database at DATABASE_URL: " + redact(err.Error(), dsn))
}

// redact removes from msg the password of dsn and the whole dsn, whatever form either takes:
// no message carries a database password.
func redact(msg, dsn string) string {
	var secrets []string
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok && p != "" {
			secrets = append(secrets, p, url.QueryEscape(p), url.PathEscape(p))
		}
	}
	if cc, err := pgx.ParseConfig(dsn); err == nil && cc.Password != "" {
		secrets = append(secrets, cc.Password)
	}
	if i := strings.Index(dsn, "://"); i >= 0 { // an unparsable URL: whatever stands between : and @
		rest := dsn[i+3:]
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if c := strings.Index(rest[:at], ":"); c >= 0 && c+1 < at {
				secrets = append(secrets, rest[c+1:at])
			}
		}
	}
	for _, f := range strings.Fields(dsn) { // key=value DSN
		if v, ok := strings.CutPrefix(f, "password="); ok && v != "" {
			secrets = append(secrets, strings.Trim(v, "'"))
		}
	}
	if dsn != "" {
		secrets = append(secrets, dsn)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

// ListenTRP opens the TRP listener on addr (ENCLAVE_TRP_LISTEN_ADDR), behind mTLS unless
// ENCLAVE_TRP_INSECURE: serve, dev and the tests' child enclaves open it the same way.
func (a *App) ListenTRP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (ENCLAVE_TRP_LISTEN_ADDR): %w", addr, err)
	}
	if a.TRPTLS != nil {
		ln = tls.NewListener(ln, a.TRPTLS)
	}
	return ln, nil
}
