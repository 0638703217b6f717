package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/bench"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/pglocal"
)

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("bench", "Measure the enclave on this machine: the real HTTP server and River workers over PostgreSQL,\n"+
		"kytsim with no processing delay as Chainalysis (each call answered after --kyt-latency), and a\n"+
		"receiver verifying every callback (answering after --receiver-latency). Prints a calibration\n"+
		"(durable single-row INSERTs/s of its PostgreSQL at the same concurrency, measured first) and\n"+
		"each throughput also as a ratio of it; accept throughput and latency; screening (accept to\n"+
		"terminal state) and delivery (accept to callback) throughput and latency; Chainalysis calls per\n"+
		"assessment and lost assessments. It starts a throwaway durable PostgreSQL from the installed\n"+
		"server binaries, unless --database-url names a database it may fill: DATABASE_URL is never\n"+
		"used (it is likely the enclave's own), and a database that already holds verifications is\n"+
		"refused unless --force.\n\n"+
		"With --scale N it measures the list routes instead: it loads N verifications, assessments,\n"+
		"screenings and callbacks and N/3 alerts (generate_series; skipped when the database holds N\n"+
		"already), then times each list route with each filter, the first page and pages deep by\n"+
		"cursor, and the accept path, one request at a time, beside the calibration.\n\n"+
		"With --exchange it measures the verification exchange instead: two enclaves in this process,\n"+
		"each on its own database of that PostgreSQL, over real HTTP through a proxy adding\n"+
		"--peer-latency to every peer hop, the beneficiary's Verify User API answering after\n"+
		"--vasp-api-latency; create -> the originator's VERIFICATION_RESULT callback, beside the floor\n"+
		"(2 x peer latency + VASP latency) and the calibration.",
		"  ENCLAVE_WORKERS, ENCLAVE_CALLBACK_WORKERS, ENCLAVE_PIPELINE_CONNECTIONS, ENCLAVE_PEER_WORKERS\n"+
			"                the defaults of the flags of the same names (DATABASE_URL is ignored: see --database-url)\n", stderr)
	o := bench.Options{}
	fs.IntVar(&o.Rate, "rate", 500, "assessments requested per second")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long requests are sent and measured")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "how long requests are sent at the same rate before the measurement")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "requests in flight at most")
	env := config.Load(getenv)
	fs.IntVar(&o.Workers, "workers", env.Workers, "pipeline jobs worked at once (ENCLAVE_WORKERS)")
	fs.IntVar(&o.CallbackWorkers, "callback-workers", env.CallbackWorkers, "callback deliveries made at once (ENCLAVE_CALLBACK_WORKERS)")
	fs.IntVar(&o.PipelineConnections, "pipeline-connections", env.PipelineConnections, "database connections the workers share (ENCLAVE_PIPELINE_CONNECTIONS)")
	fs.DurationVar(&o.KYTLatency, "kyt-latency", 0, "added to every Chainalysis call (a real KYT answer takes ~150ms)")
	fs.DurationVar(&o.ReceiverLatency, "receiver-latency", 0, "how long the callback receiver takes to answer")
	fs.DurationVar(&o.Calibration, "calibration", 2*time.Second, "how long the calibration runs (negative: skip it)")
	fs.Float64Var(&o.TransferShare, "transfer-share", 0.5, "fraction of assessments that are TRANSFERs")
	scale := fs.Int("scale", 0, "load this many rows of every listed table and time the list routes (0: measure the accept pipeline)")
	samples := fs.Int("samples", 50, "with --scale: how many times each request is timed")
	depth := fs.Int("depth", 1000, "with --scale: how many pages of 20 each list is followed by cursor")
	databaseURL := fs.String("database-url", "", "benchmark in this PostgreSQL database instead of a throwaway server's; the bench fills it\n"+
		"with fake verifications sealed with a throwaway key (--exchange makes <database>_counterparty beside it)")
	force := fs.Bool("force", false, "with --database-url: use the database even if it already holds verifications")
	dataDir := fs.String("data-dir", "", "keep the throwaway PostgreSQL's cluster here and reuse it (a loaded --scale database survives the run)")
	exchange := fs.Bool("exchange", false, "measure two enclaves exchanging verifications (create -> VERIFICATION_RESULT) instead of screening")
	var xo bench.ExchangeOptions
	fs.DurationVar(&xo.VASPAPILatency, "vasp-api-latency", 0, "with --exchange: how long the beneficiary's Verify User API takes to answer")
	fs.DurationVar(&xo.PeerLatency, "peer-latency", 0, "with --exchange: added to every request from one enclave to the other")
	fs.IntVar(&xo.PeerWorkers, "peer-workers", env.PeerWorkers, "with --exchange: messages to the counterparty and Verify User calls at once (ENCLAVE_PEER_WORKERS)")
	verbose := fs.Bool("v", false, "print the enclave's warnings and the accept latency of each second")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run (the whole process) to this file")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *verbose {
		o.Log = stderr
	}
	dsn := *databaseURL // never DATABASE_URL: the bench writes fake rows into what it is given
	if *force && dsn == "" {
		return usageError{"bench: --force goes with --database-url"}
	}
	if dsn == "" {
		fmt.Fprintln(stdout, "starting a throwaway PostgreSQL…")
		c, err := pglocal.Start(ctx, pglocal.Options{DataDir: *dataDir})
		if err != nil {
			return err
		}
		defer c.Stop() //nolint:errcheck
		dsn = c.URL("postgres")
	}
	if *databaseURL != "" && !*force { // before anything is made beside it
		db, err := app.OpenDB(ctx, dsn, 1)
		if err != nil {
			return err
		}
		err = refuseIfHolding(ctx, db, dsn)
		db.Close()
		if err != nil {
			return err
		}
	}
	dsns := []string{dsn}
	if *exchange {
		theirs, err := counterpartyDatabase(ctx, dsn)
		if err != nil {
			return err
		}
		dsns = append(dsns, theirs)
	}
	for _, dsn := range dsns {
		db, err := app.OpenDB(ctx, dsn, 2)
		if err != nil {
			return err
		}
		if *databaseURL != "" && !*force {
			if err := refuseIfHolding(ctx, db, dsn); err != nil {
				db.Close()
				return err
			}
		}
		_, err = schema.Migrate(ctx, db.DB)
		db.Close()
		if err != nil {
			return err
		}
	}
	o.DSN = dsn
	if *scale > 0 {
		so := bench.ScaleOptions{DSN: dsn, N: *scale, Samples: *samples, Depth: *depth, Calibration: o.Calibration, Log: io.Discard}
		if *verbose {
			so.Log = stderr
		}
		res, err := bench.Scale(ctx, so)
		if err != nil {
			return err
		}
		res.Print(stdout, so)
		return nil
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *exchange {
		xo.DSN, xo.CounterpartyDSN = dsn, dsns[1]
		xo.Rate, xo.Duration, xo.Warmup, xo.Concurrency, xo.Calibration = o.Rate, o.Duration, o.Warmup, o.Concurrency, o.Calibration
		xo.CallbackWorkers, xo.PipelineConnections, xo.Log = o.CallbackWorkers, o.PipelineConnections, o.Log
		res, err := bench.RunExchange(ctx, xo)
		if err != nil {
			return err
		}
		res.Print(stdout, xo)
		if res.Lost > 0 {
			fmt.Fprintf(stdout, "  first lost verifications: %v\n", res.LostIDs)
			return fmt.Errorf("bench: %d verifications lost", res.Lost)
		}
		return nil
	}
	res, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	res.Print(stdout, o)
	if *verbose {
		res.PrintPerSecond(stdout)
	}
	if res.Lost > 0 {
		fmt.Fprintf(stdout, "  first lost requestIds: %v\n", res.CallbacksNotYetArrived[:min(5, len(res.CallbacksNotYetArrived))])
		return fmt.Errorf("bench: %d assessments lost", res.Lost)
	}
	return nil
}

// refuseIfHolding refuses a database that holds verifications: the bench would add thousands
// of fake ones, sealed with a throwaway key that no enclave holds.
func refuseIfHolding(ctx context.Context, db *sqlx.DB, dsn string) error {
	n, err := verificationsIn(ctx, db)
	if err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("bench: the database %s holds verifications already; the bench would add thousands of fake ones "+
			"sealed with a throwaway key. Give it an empty database, or pass --force if this one is for benchmarking", dbName(dsn))
	}
	return nil
}

// verificationsIn tells whether a database holds verifications: it has the enclave's table
// and at least one row in it.
func verificationsIn(ctx context.Context, db *sqlx.DB) (int, error) {
	var table *string
	if err := db.GetContext(ctx, &table, `SELECT to_regclass('verifications')::text`); err != nil {
		return 0, fmt.Errorf("bench: look at the database: %w", err)
	}
	if table == nil {
		return 0, nil
	}
	var n int
	if err := db.GetContext(ctx, &n, `SELECT count(*) FROM (SELECT 1 FROM verifications LIMIT 1) v`); err != nil {
		return 0, fmt.Errorf("bench: look at the database: %w", err)
	}
	return n, nil
}

// dbName names a database of a DSN without its credentials.
func dbName(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Host != "" {
		return strings.TrimPrefix(u.Path, "/") + " on " + u.Host
	}
	return "of --database-url"
}
