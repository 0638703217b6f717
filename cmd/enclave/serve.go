package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/httpserver"
)

const serveEnv = `  DATABASE_URL              PostgreSQL DSN (required)
  ENCLAVE_VASP_ID           this VASP's id (required)
  ENCLAVE_API_KEYS          comma-separated keys for Authorization: Bearer (required)
  ENCLAVE_LISTEN_ADDR       listen address (default :8080)
  ENCLAVE_PEERS_FILE        JSON {"peers":[{"vaspId","name","url","secret"}]} of counterparty enclaves
  CHAINALYSIS_KYT_API_URL   KYT base URL (default https://api.chainalysis.com/api/kyt)
  CHAINALYSIS_KYT_API_KEY   KYT API key, sent as the Token header (this or the next key is required;
                            without it the KYT route answers UNSUPPORTED-RISK-ASSESSMENT)
  CHAINALYSIS_RISK_API_URL  Address Screening (Entities API) base URL (default https://api.chainalysis.com/api/risk)
  CHAINALYSIS_RISK_API_KEY  its API key; without it the address screening route answers UNSUPPORTED-RISK-ASSESSMENT
  ENCLAVE_KYT_MONITOR_INTERVAL  how often alerts KYT raises later are pulled in (default 1m; 0 = off)
  ENCLAVE_CALLBACK_URL      where callbacks are POSTed (required)
  ENCLAVE_CALLBACK_TOKEN    sent as Authorization: Bearer with each callback (default: none sent)
  ENCLAVE_CALLBACK_SECRET   whsec_<base64> secret that signs callbacks (required)
  ENCLAVE_DATA_KEYSET       the Tink keyset (JSON) that encrypts personal data at rest, or
  ENCLAVE_DATA_KEYSET_FILE  a file holding it (one is required; make one with enclave keyset new)
  ENCLAVE_RETENTION         delete verifications older than this (e.g. 1825d) with all about them,
                            hourly, one replica at a time (default: keep forever)
  ENCLAVE_CALLBACK_ON_REGISTERED  also send a callback when an assessment is REGISTERED (default false)
  ENCLAVE_KYT_MAX_AGE       how long an assessment may take before ERROR KYT-TIMEOUT (default 24h)
  ENCLAVE_KYT_POLL_MAX_INTERVAL  longest wait between two summary polls (default 5m)
  ENCLAVE_KYT_RATE_LIMIT    Chainalysis requests per second from this process (default 0: no limit)
  CHAINALYSIS_TIMEOUT       one Chainalysis call at most; cut short, it is retried (default 10s)
  ENCLAVE_WORKERS           assessment jobs worked at once by this process; a job waiting on
                            Chainalysis holds a goroutine, not a connection (default 1000)
  ENCLAVE_CALLBACK_WORKERS  callback deliveries made at once, on a lane of their own (default 1000)
  ENCLAVE_PIPELINE_CONNECTIONS  database connections the workers share (default 8; the API has 20 of its own)
  ENCLAVE_SHUTDOWN_TIMEOUT  how long a graceful shutdown may take (default 20s)
  ENCLAVE_HTTP_MAX_CONNS    connections held at once; one more is answered 503 and closed
                            (default: half the open-file limit, at most 10000)
  ENCLAVE_HTTP_MAX_CONNS_PER_CLIENT  connections from one IP address (default: half of the above)
  ENCLAVE_HTTP_READ_TIMEOUT  reading one request, headers (5s at most) and body (default 30s)
  ENCLAVE_HTTP_WRITE_TIMEOUT answering one request; Prefer: wait adds its wait (default 30s)
  ENCLAVE_HTTP_MIN_BODY_RATE slowest a body may arrive after 5 s, bytes/s (default 16384)
  ENCLAVE_TRP_LISTEN_ADDR   where TRP (OpenVASP Travel Rule Protocol v3) inquiries and callbacks are
                            served (default: none, no TRP)
  ENCLAVE_TRP_URL           the https URL counterparties reach that listener at (required with it)
  ENCLAVE_TRP_TLS_CERT, ENCLAVE_TRP_TLS_KEY, ENCLAVE_TRP_TLS_CA
                            PEM files for TRP's mutual TLS, both ways (required for TRP)
  ENCLAVE_TRP_INSECURE      1: plain HTTP for TRP, refused unless everything TRP is on loopback
`

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("serve", "Serve the HTTP API. The database must have been migrated with `enclave migrate`.", serveEnv, stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := config.Load(getenv)
	if err := cfg.Validate(config.NeedServe); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	return serve(ctx, cfg, log)
}

// serve runs the enclave until ctx ends or SIGINT/SIGTERM arrives, then shuts down gracefully:
// it stops accepting, lets in-flight requests finish, and closes the pool.
func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	pools, err := app.Open(ctx, cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		return err
	}
	defer pools.Close()
	if err := schema.Check(ctx, pools.API.DB); err != nil {
		return err
	}

	a, err := app.New(cfg, log, pools, app.Tuning{})
	if err != nil {
		return err
	}
	// The port before the workers: a second serve on a taken port stops here, having started
	// nothing.
	ln, err := httpserver.Listen(cfg.ListenAddr, cfg, log, a.Metrics)
	if err != nil {
		return fmt.Errorf("listen on %s (ENCLAVE_LISTEN_ADDR): %w", cfg.ListenAddr, err)
	}
	defer ln.Close()
	// River works in the background on its own context, so that shutdown can let running jobs
	// finish before the pool closes.
	if err := a.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	defer a.Close() // after River stops: the listener of Prefer: wait
	defer stopRiver(log, a, cfg.ShutdownTimeout)
	srv := httpserver.New(a.Handler, log, cfg)
	log.Info("enclave serving", "addr", ln.Addr().String(), "version", versionString(), "config", cfg,
		"maxConns", httpserver.MaxConns(cfg), "maxConnsPerClient", httpserver.MaxConnsPerClient(cfg))
	for _, w := range cfg.ExposedFiles() {
		log.Warn(w)
	}
	if cfg.PeersFile != "" && len(cfg.Peers) == 0 {
		log.Warn("ENCLAVE_PEERS_FILE lists no peers: every request on /peer/v1 will be refused", "file", cfg.PeersFile)
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	var trpSrv *http.Server
	if a.TRPHandler != nil {
		tln, err := a.ListenTRP(cfg.TRPListenAddr)
		if err != nil {
			return err
		}
		// The same bounds as the API's listener: a counterparty is as untrusted as any client.
		// (Its connections are not in enclave_http_connections_*, which are the API's.)
		if tln, err = httpserver.Limit(tln, cfg, log, nil); err != nil {
			return err
		}
		defer tln.Close()
		trpSrv = httpserver.New(a.TRPHandler, log, cfg)
		log.Info("TRP listener serving", "addr", tln.Addr().String(), "url", cfg.TRPURL, "mutualTLS", a.TRPTLS != nil)
		go func() { served <- trpSrv.Serve(tln) }()
	}

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if trpSrv != nil {
		if err := trpSrv.Shutdown(sctx); err != nil {
			return fmt.Errorf("shutdown of the TRP listener: %w", err)
		}
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped")
	return nil
}

// stopRiver lets running jobs finish, then cancels any still running: a cancelled job is
// retried by the next process, never lost.
func stopRiver(log *slog.Logger, a *app.App, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := a.Stop(ctx); err != nil {
		log.Warn("jobs still running at shutdown; cancelling them", "err", err)
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		a.StopAndCancel(cctx) //nolint:errcheck // best effort; River rescues what is left
	}
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("migrate", "Apply the enclave's and River's migrations. Safe to run twice and from two processes at once.",
		"  DATABASE_URL  PostgreSQL DSN (required)\n", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := config.Load(getenv)
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	db, err := app.OpenDB(ctx, cfg.DatabaseURL, 4)
	if err != nil {
		return err
	}
	defer db.Close()
	res, err := schema.Migrate(ctx, db.DB)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "migrated: enclave versions applied %v, river versions applied %v\n", res.Enclave, res.River)
	return nil
}
