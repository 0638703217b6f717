package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/travelrule/enclave/internal/kytsim"
)

// networkDelays is the --network-delay flag: "Bitcoin=10m,Ethereum=15s".
type networkDelays map[string]time.Duration

func (n networkDelays) String() string {
	var parts []string
	for k, v := range n {
		parts = append(parts, k+"="+v.String())
	}
	return strings.Join(parts, ",")
}

func (n networkDelays) Set(s string) error {
	for _, part := range strings.Split(s, ",") {
		name, d, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("want NETWORK=DURATION, got %q", part)
		}
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return fmt.Errorf("%s: want a duration such as 10m, got %q", name, d)
		}
		n[name] = v
	}
	return nil
}

func runKYTSim(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("kytsim", "Serve a stateful Chainalysis sandbox: KYT (the v2 transfer and withdrawal-attempt endpoints,\n"+
		"GET /v1/alerts, /v1/users, /v1/assets) and the Address Screening Entities API (POST /v2/entities,\n"+
		"GET /v2/entities/{address}), plus /_sim/faults, /_sim/addresses (PUT one to re-rate it),\n"+
		"/_sim/alerts/{id} and /_sim/transactions to steer it. Point CHAINALYSIS_KYT_API_URL at\n"+
		"<it>/api/kyt and CHAINALYSIS_RISK_API_URL at <it>/api/risk.",
		"  KYTSIM_API_KEY  the Token requests must carry, when --api-key is not given\n", stderr)
	o := kytsim.DefaultOptions("")
	delays := networkDelays{}
	listen := fs.String("listen", ":9090", "listen address")
	fs.StringVar(&o.APIKey, "api-key", getenv("KYTSIM_API_KEY"), "the Token requests must carry (required)")
	fs.DurationVar(&o.TransferDelay, "transfer-delay", o.TransferDelay, "how long a transfer takes to process")
	fs.DurationVar(&o.AttemptDelay, "attempt-delay", o.AttemptDelay, "how long a withdrawal attempt takes to process (0: at registration)")
	fs.Var(delays, "network-delay", "per-network transfer delays, e.g. Bitcoin=10m,Ethereum=15s")
	fs.Float64Var(&o.RiskyFraction, "risky-fraction", 0, "fraction (0..1) of unknown addresses given a risky category, by hash")
	fs.Float64Var(&o.Faults.ErrorRate, "error-rate", 0, "fraction of requests answered 500/503")
	fs.Float64Var(&o.Faults.RateLimitRate, "rate-limit-rate", 0, "fraction of requests answered 429")
	fs.IntVar(&o.Faults.RetryAfterSeconds, "retry-after", 0, "Retry-After seconds sent with each 429 (0: none)")
	fs.IntVar(&o.Faults.LatencyMillis, "latency-ms", 0, "milliseconds added to every request")
	fs.BoolVar(&o.Faults.Down, "down", false, "start with the API down (503)")
	fs.Uint64Var(&o.Seed, "seed", 0, "seed of the fault dice, to repeat a run's faults (0: a new seed each run, printed)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	if o.APIKey == "" {
		return usageError{"kytsim: --api-key (or KYTSIM_API_KEY) is required"}
	}
	if o.Faults.ErrorRate < 0 || o.Faults.RateLimitRate < 0 || o.Faults.ErrorRate+o.Faults.RateLimitRate > 1 || o.RiskyFraction < 0 || o.RiskyFraction > 1 {
		return usageError{"kytsim: rates and --risky-fraction are fractions from 0 to 1 (error and rate-limit rates together at most 1)"}
	}
	o.NetworkDelays = delays

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("kytsim: listen on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: kytsim.New(o), ReadHeaderTimeout: 5 * time.Second}
	fmt.Fprintf(stdout, "kytsim: Chainalysis sandbox on http://%s: KYT under /api/kyt, Address Screening under /api/risk (send the key as the Token header)\n", ln.Addr())
	fmt.Fprintf(stdout, "  transfers processed after %s, withdrawal attempts after %s; fault seed %d\n\n", o.TransferDelay, o.AttemptDelay, o.Seed)
	printKnownAddresses(stdout)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// printKnownAddresses lists the sandbox's risky addresses, so a person can try them.
func printKnownAddresses(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  known address\tcategory\texposure\tservice")
	for _, e := range kytsim.KnownAddresses {
		exp := e.Exposure
		if exp == "" {
			exp = "DIRECT"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Address, e.Category.Name, exp, e.Service)
	}
	tw.Flush()
	fmt.Fprintln(w, "  any other address is clean")
}
