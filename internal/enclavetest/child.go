package enclavetest

import (
	"bufio"
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
)

// ChildEnv, set, makes a test binary run as a child enclave instead of its tests.
const ChildEnv = "ENCLAVE_TEST_CHILD"

// Main runs a package's tests, or — in a child process started by StartChild — child, which
// runs an enclave until it is killed. Crash tests spend most of their time waiting for River to
// rescue what a killed child left running: they wait side by side, not GOMAXPROCS at a time,
// unless -parallel says otherwise.
func Main(m *testing.M, child func()) {
	if os.Getenv(ChildEnv) != "" {
		child()
		return
	}
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "16") //nolint:errcheck // the flag exists
	}
	dbtest.Main(m)
}

// Child is an enclave in a child process (this test binary, re-executed), which a test kills
// with SIGKILL at a chosen step: nothing in the enclave knows it is being tested; the child
// stops itself through the same seams any test uses, blocking until it is killed. It prints
// "READY <addr>" once it serves, and whatever else it says, line by line.
type Child struct {
	cmd   *exec.Cmd
	Addr  string
	lines chan string
}

// StartChild starts a child with env added to this process's, and waits until it serves. It
// is killed when the test ends.
func StartChild(t testing.TB, env ...string) *Child {
	t.Helper()
	Slow(t, "an enclave in a child process")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), ChildEnv+"=1"), env...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	c := &Child{cmd: cmd, lines: make(chan string, 100)}
	t.Cleanup(c.Kill)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	c.Addr = strings.TrimPrefix(c.Expect(t, "READY "), "READY ")
	return c
}

// Expect waits for the child's next line that starts with prefix and returns it.
func (c *Child) Expect(t testing.TB, prefix string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("child did not print %q within 30s", prefix)
		}
	}
}

// Kill is kill -9: no deferred function, no graceful shutdown, jobs left running.
func (c *Child) Kill() {
	if c.cmd.Process != nil {
		c.cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck
		c.cmd.Wait()                          //nolint:errcheck
	}
}

// ExpireLeadership ends the River leadership a killed child held on dsn's database: its lease
// would lapse 15 s later, and what a crash test checks is how work resumes, not River's
// election.
func ExpireLeadership(t testing.TB, dsn string) {
	t.Helper()
	db, err := sqlx.Open("postgres", dsn)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`DELETE FROM river_leader`)
	require.NoError(t, err)
}

// ServeChild is the body of a child enclave: it opens the pools as serve does, wires the
// enclave with cfg and tuning (whose seams stop it at the step under test), starts River,
// prints "READY <addr>" for StartChild (then "TRP <addr>" when cfg has a TRP listener, which
// it opens first) and serves until it is killed. CHILD_LOG=1 shows the
// child's logs, River's included. It panics on any error: the test reading it then fails.
func ServeChild(cfg config.Config, tuning app.Tuning) {
	pools, err := app.Open(context.Background(), cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		panic(err)
	}
	var lw io.Writer = io.Discard
	if os.Getenv("CHILD_LOG") != "" {
		lw = os.Stderr
	}
	var trpLn net.Listener
	if cfg.TRPListenAddr != "" {
		// The port first: ENCLAVE_TRP_URL names it (an address of ":0" or "127.0.0.1:0" is free).
		if trpLn, err = net.Listen("tcp", cfg.TRPListenAddr); err != nil {
			panic(err)
		}
		cfg.TRPListenAddr = trpLn.Addr().String()
		if cfg.TRPURL == "" {
			cfg.TRPURL = "http://" + cfg.TRPListenAddr
		}
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelDebug})), pools, tuning)
	if err != nil {
		panic(err)
	}
	if err := a.Start(context.Background()); err != nil {
		panic(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Printf("READY %s\n", ln.Addr())
	if trpLn != nil {
		if a.TRPTLS != nil {
			trpLn = tls.NewListener(trpLn, a.TRPTLS)
		}
		fmt.Printf("TRP %s\n", trpLn.Addr())
		go http.Serve(trpLn, a.TRPHandler) //nolint:errcheck // until SIGKILL
	}
	http.Serve(ln, a.Handler) //nolint:errcheck // until SIGKILL
}
