// Command enclave is the travel-rule enclave: one binary whose subcommands serve the API,
// migrate the database and print the version. main only calls run, which end-to-end tests
// call too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/travelrule/enclave/internal/config"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "enclave:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks a mistake in how the command was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 1
}

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "serve the HTTP API and work the assessment pipeline", runServe},
		{"healthcheck", "exit 0 when the local enclave's /readyz answers 200 (the container's HEALTHCHECK)", runHealthcheck},
		{"migrate", "apply the enclave's and River's database migrations (safe to repeat)", runMigrate},
		{"dev", "run two enclaves locally, each other's counterparty (PostgreSQL, kytsim, demo VASP backends), with nothing to configure", runDev},
		{"keyset", "make (new) or rotate the keyset that encrypts personal data at rest", runKeyset},
		{"rekey", "seal every stored payload under the keyset's primary key (online, in batches)", runRekey},
		{"operator", "add, list or disable the operators of the console (/console)", runOperator},
		{"purge", "delete verifications older than ENCLAVE_RETENTION with all about them (--dry-run counts)", runPurge},
		{"trp", "issue the Travel Address (TRP) of one of this VASP's wallets: trp address <wallet>", runTRP},
		{"kytsim", "serve a stateful Chainalysis KYT sandbox for tests, demos and staging", runKYTSim},
		{"bench", "measure accept latency, end-to-end throughput and losses on this machine (--exchange: two enclaves)", runBench},
		{"version", "print the version", runVersion},
	}
}

// run executes the subcommand named by args[0].
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage())
		if len(args) == 0 {
			return usageError{"a subcommand is required"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			if err := checkEnviron(os.Environ(), stderr); err != nil {
				return err
			}
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	return usageError{fmt.Sprintf("unknown subcommand %q; run `enclave --help`", args[0])}
}

// checkEnviron warns on stderr about each ENCLAVE_* or CHAINALYSIS_* variable of the process's
// environment that the enclave does not read, naming the nearest known one, or fails under
// ENCLAVE_STRICT_ENV=1: a misspelled variable is otherwise silently ignored. The names are the
// process's own (a test's getenv holds values, not a list of names).
func checkEnviron(environ []string, stderr io.Writer) error {
	warnings, err := config.CheckEnviron(environ)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "enclave: warning: %s; it is ignored (ENCLAVE_STRICT_ENV=1 makes this an error)\n", w)
	}
	return nil
}

func usage() string {
	var b strings.Builder
	b.WriteString("enclave: a self-hosted travel-rule enclave with Chainalysis KYT screening.\n\nUsage: enclave <subcommand> [flags]\n\nSubcommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun `enclave <subcommand> --help` for its flags and environment.\n")
	return b.String()
}

// flags returns a FlagSet whose --help prints the summary, the flags and the environment
// the subcommand reads.
func flags(name, summary, env string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("enclave "+name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: enclave %s [flags]\n\n%s\n", name, summary)
		var hasFlags bool
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintln(out, "\nFlags:")
			fs.PrintDefaults()
		}
		if env != "" {
			fmt.Fprintf(out, "\nEnvironment:\n%s", env)
		}
	}
	return fs
}

func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	return nil
}

// version is set at build time with -ldflags "-X main.version=v1.2.3"; otherwise the module
// version or the VCS revision stamped by go build is used.
var version = ""

// versionString names the build as precisely as the binary knows it, and says so when it
// knows nothing: `go run` and -buildvcs=false stamp no revision.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information in this binary)"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+modified"
			}
		}
	}
	if rev != "" {
		return fmt.Sprintf("devel %s%s (%s, %s)", rev, dirty, at, bi.GoVersion)
	}
	return fmt.Sprintf("devel (%s; no revision stamped: built by go run or with -buildvcs=false — "+
		"`go build ./cmd/enclave` in a git clone records it)", bi.GoVersion)
}

func runVersion(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flags("version", "Print the version of this binary.", "", stderr)
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "enclave", versionString())
	return nil
}
