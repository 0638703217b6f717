// Package pglocal runs a private PostgreSQL server from the machine's installed server
// binaries (initdb, pg_ctl, postgres). The test harness and `enclave dev` both use it, so a
// fresh machine with PostgreSQL's server packages needs nothing else. PostgreSQL refuses to
// run as root: when the process is root, the server runs as the "postgres" system user.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// InstallHint says how to get the binaries on Debian and Ubuntu.
const InstallHint = "install PostgreSQL's server binaries (Debian/Ubuntu: apt-get install postgresql), " +
	"or set DATABASE_URL / TEST_DATABASE_URL to an existing server"

// Options configure Start.
type Options struct {
	// DataDir holds the cluster. Empty means a new temporary directory, removed by Stop. An
	// existing cluster in DataDir is reused.
	DataDir string
	// Port to listen on, 127.0.0.1 only; 0 picks a free one.
	Port int
	// Ephemeral trades durability for speed (fsync off): for test clusters only.
	Ephemeral bool
	// OnStale, when set, is told before Start stops a server left running in DataDir by a
	// process that died.
	OnStale func(dataDir string)
	// From, when set, is a cluster (left by Snapshot) that a new data directory starts as a
	// copy of, instead of running initdb.
	From string
}

// Cluster is a running server.
type Cluster struct {
	bin     string
	dataDir string
	port    int
	temp    string
	cred    *syscall.Credential
	opts    string // the server's options, for Resume
}

// FindBinaries returns the directory holding initdb, pg_ctl and postgres: from PATH, else the
// newest /usr/lib/postgresql/*/bin.
func FindBinaries() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasAll(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
		if hasAll(filepath.Dir(p)) {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if hasAll(d) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: " + InstallHint)
}

func hasAll(dir string) bool {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return false
		}
	}
	return true
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Start initialises the cluster if DataDir holds none, then starts the server and waits until
// it accepts connections.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	bin, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dataDir: o.DataDir, port: o.Port}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, errors.New("running as root and there is no \"postgres\" system user to run PostgreSQL as: " + InstallHint)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if c.dataDir == "" {
		c.temp, err = os.MkdirTemp("", "enclave-pg-")
		if err != nil {
			return nil, fmt.Errorf("pglocal: %w", err)
		}
		c.dataDir = filepath.Join(c.temp, "data")
	}
	if err := c.prepareDir(); err != nil {
		c.cleanup()
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err != nil && o.From != "" {
		// cp -a keeps the owner (the postgres user when we are root) and the modes.
		if out, err := exec.CommandContext(ctx, "cp", "-a", o.From+"/.", c.dataDir).CombinedOutput(); err != nil {
			c.cleanup()
			return nil, fmt.Errorf("pglocal: copy the cluster %s: %w: %s", o.From, err, out)
		}
	} else if err != nil {
		if err := c.run(ctx, "initdb", "-D", c.dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"); err != nil {
			c.cleanup()
			return nil, err
		}
	} else if c.run(ctx, "pg_ctl", "-D", c.dataDir, "status") == nil {
		// A server of this cluster left running by a process that died without stopping it
		// (kill -9, a closed terminal): the cluster is ours, so stop it and start afresh.
		if o.OnStale != nil {
			o.OnStale(c.dataDir)
		}
		if err := c.run(ctx, "pg_ctl", "-D", c.dataDir, "-m", "fast", "-w", "stop"); err != nil {
			return nil, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if o.Port == 0 {
			if c.port, err = freePort(); err != nil {
				c.cleanup()
				return nil, err
			}
		}
		opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=300", c.port, c.dataDir)
		if o.Ephemeral {
			opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
		}
		c.opts = opts
		if lastErr = c.start(ctx); lastErr == nil {
			return c, nil
		}
		if o.Port != 0 {
			break
		}
	}
	c.cleanup()
	return nil, lastErr
}

func (c *Cluster) start(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.dataDir, "-o", c.opts, "-l", filepath.Join(c.dataDir, "server.log"), "-w", "-t", "60", "start")
}

// Snapshot keeps a copy of the cluster in dir, for Options.From: the server stops (cleanly, so
// the copy needs no recovery), the data directory is copied and the server starts again. The
// copy appears whole or not at all; when dir exists already (another process made it), it is
// left as it is.
func (c *Cluster) Snapshot(ctx context.Context, dir string) error {
	if err := c.run(ctx, "pg_ctl", "-D", c.dataDir, "-m", "fast", "-w", "stop"); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	err := os.MkdirAll(filepath.Dir(dir), 0o755)
	if err == nil {
		var out []byte
		if out, err = exec.CommandContext(ctx, "cp", "-a", c.dataDir, tmp).CombinedOutput(); err != nil {
			err = fmt.Errorf("pglocal: snapshot: %w: %s", err, out)
		} else if rerr := os.Rename(tmp, dir); rerr != nil {
			os.RemoveAll(tmp) // another process was first
		}
	}
	if serr := c.start(ctx); serr != nil {
		return serr
	}
	return err
}

// Crash stops the server at once, as a crash or an outage would (pg_ctl -m immediate),
// keeping its data for Resume: for tests of what the enclave does while its database is gone.
func (c *Cluster) Crash(ctx context.Context) error {
	return c.run(ctx, "pg_ctl", "-D", c.dataDir, "-m", "immediate", "-w", "stop")
}

// Resume starts a server stopped by Crash again, on the same port, recovering its data.
func (c *Cluster) Resume(ctx context.Context) error { return c.start(ctx) }

// URL is the DSN of database db on this server, as the superuser "postgres".
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// Stop shuts the server down and, for a temporary cluster, removes its files.
func (c *Cluster) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.run(ctx, "pg_ctl", "-D", c.dataDir, "-m", "fast", "-w", "stop")
	c.cleanup()
	return err
}

func (c *Cluster) cleanup() {
	if c.temp != "" {
		os.RemoveAll(c.temp)
	}
}

// prepareDir creates the data directory and, when the server runs as another user, hands it
// (and a temporary parent) to that user. It checks that the server can reach the directory
// before creating anything, so a refusal leaves nothing behind.
func (c *Cluster) prepareDir() error {
	if c.cred != nil && c.temp == "" {
		if err := Reachable(c.dataDir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(filepath.Dir(c.dataDir), 0o755); err != nil {
		return fmt.Errorf("pglocal: create %s: %w", filepath.Dir(c.dataDir), err)
	}
	if err := os.MkdirAll(c.dataDir, 0o700); err != nil {
		return fmt.Errorf("pglocal: create %s: %w", c.dataDir, err)
	}
	if c.cred == nil {
		return nil
	}
	for _, d := range []string{c.temp, c.dataDir} {
		if d == "" {
			continue
		}
		if err := os.Chown(d, int(c.cred.Uid), int(c.cred.Gid)); err != nil {
			return fmt.Errorf("pglocal: hand %s to the postgres user: %w", d, err)
		}
	}
	return nil
}

// Reachable returns why PostgreSQL could not use dir as its data directory, or nil. It matters
// only when this process is root and the server runs as the postgres user, which must be able
// to enter every directory on the way (a home directory of mode 0700, or a mktemp -d
// directory, is not). Nothing is created or changed.
func Reachable(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("pglocal: PostgreSQL runs as the postgres user, which cannot enter %s (mode %#o)", d, fi.Mode().Perm())
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, name), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if log, rerr := os.ReadFile(filepath.Join(c.dataDir, "server.log")); rerr == nil && name == "pg_ctl" {
			msg += "\n" + tail(string(log), 10)
		}
		return fmt.Errorf("pglocal: %s: %w\n%s", name, err, msg)
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pglocal: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CPU is the processor time the server has used so far: its postmaster's, that of every
// backend it has reaped, and that of the backends still running. The test harness reports it
// (TEST_CPU_REPORT=file) to find where the suite's time goes: most of it is PostgreSQL's, which
// a test process's own rusage omits.
func (c *Cluster) CPU() time.Duration {
	b, err := os.ReadFile(filepath.Join(c.dataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, _, _ := strings.Cut(string(b), "\n")
	n, err := strconv.Atoi(strings.TrimSpace(pid))
	if err != nil {
		return 0
	}
	return ServerCPU(n)
}

// ServerCPU is the processor time a PostgreSQL server on this machine has used so far, given
// its postmaster's pid: the postmaster's own, its reaped backends' (counted into it when they
// exit) and its running backends'. A difference of two readings is what the server spent
// between them, whichever backends came and went. 0 when the process cannot be read.
func ServerCPU(postmaster int) time.Duration {
	f := procStat(postmaster)
	if len(f) < 15 {
		return 0
	}
	ticks := sumTicks(f[11:15]) // utime, stime, cutime, cstime
	entries, _ := os.ReadDir("/proc")
	parent := strconv.Itoa(postmaster)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == postmaster {
			continue
		}
		if c := procStat(pid); len(c) >= 13 && c[1] == parent {
			ticks += sumTicks(c[11:13]) // a running backend: utime, stime
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

// ParentPID is the parent of process pid (a backend's parent is its postmaster), 0 when it
// cannot be read: the server is on another machine, or in another namespace.
func ParentPID(pid int) int {
	f := procStat(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// procStat is /proc/pid/stat's fields after the command's closing parenthesis: state, ppid,
// … utime, stime, cutime, cstime are the 12th to 15th (1-based) of them.
func procStat(pid int) []string {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndex(string(st), ") ")
	if i < 0 {
		return nil
	}
	return strings.Fields(string(st[i+2:]))
}

func sumTicks(fields []string) int64 {
	var t int64
	for _, x := range fields {
		n, _ := strconv.ParseInt(x, 10, 64)
		t += n
	}
	return t
}
