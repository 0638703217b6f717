// Package dbtest gives every integration test its own migrated PostgreSQL database, cheaply:
// one server per test binary, one migrated template database, and a CREATE DATABASE ...
// TEMPLATE per test. The server is, in order of preference: TEST_DATABASE_URL; a container
// through dockertest when a Docker engine answers; a throwaway cluster from the installed
// server binaries (internal/pglocal). When none works the test fails saying how to fix it;
// it never skips.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "github.com/lib/pq" // the driver
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/pglocal"
)

// server is the one database server of this test binary, started on first use.
type server struct {
	once     sync.Once
	err      error
	adminURL string // a database on the server we may CREATE/DROP DATABASE from
	template string
	stop     func()
	// own is set when the server is this binary's alone (its own cluster or container).
	own bool
	// cluster is the server when it is a local cluster of this binary's own.
	cluster *pglocal.Cluster
	// snapshot, when set, keeps the cluster for the next test binary (cacheDir).
	snapshot func()
	// templates are the template and its copies: PostgreSQL copies a template for one CREATE
	// DATABASE at a time, so with several, tests starting together get their databases side by
	// side (each copy takes 0.2-0.7 s on this machine).
	templates chan string
}

// copies is how many templates a server keeps.
const copies = 3

var srv server

// Main runs the package's tests and then stops the server they shared. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if f := os.Getenv("TEST_CPU_REPORT"); f != "" {
		report(f)
	}
	if srv.stop != nil {
		srv.stop()
	}
	os.Exit(code)
}

// URL returns the DSN of a new, migrated database that is dropped when the test ends.
func URL(t testing.TB) string {
	t.Helper()
	srv.once.Do(srv.start)
	if srv.err != nil {
		t.Fatalf("test database: %v", srv.err)
	}
	name := "t_" + randomHex(8)
	admin, err := sql.Open("postgres", srv.adminURL)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	defer admin.Close()
	tpl := <-srv.templates
	_, err = admin.Exec(fmt.Sprintf(`CREATE DATABASE %s TEMPLATE %s STRATEGY = FILE_COPY`, name, tpl))
	srv.templates <- tpl
	databases.Add(1)
	if err != nil {
		t.Fatalf("test database: create %s: %v", name, err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("postgres", srv.adminURL)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(fmt.Sprintf(`DROP DATABASE IF EXISTS %s WITH (FORCE)`, name)) //nolint:errcheck // best effort; the server goes with the binary
	})
	return withDatabase(srv.adminURL, name)
}

// New returns a connection pool on a new, migrated database, closed and dropped when the
// test ends.
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Open("postgres", URL(t))
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OwnServer starts a PostgreSQL server of t's alone, from the installed binaries, with the
// schema migrated in its database "postgres", and returns it and that database's DSN; it is
// stopped when t ends. It is for a test that stops or crashes its server (pglocal's Crash and
// Resume), which the server every other test shares must never be.
func OwnServer(t testing.TB, o pglocal.Options) (*pglocal.Cluster, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("a PostgreSQL server of its own, stopped mid-test: a slow test, left out by -short")
	}
	ctx := context.Background()
	pg, err := pglocal.Start(ctx, o)
	if err != nil {
		t.Fatalf("test database server: %v", err)
	}
	t.Cleanup(func() { pg.Stop() }) //nolint:errcheck
	dsn := pg.URL("postgres")
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatalf("test database: %v", err)
	}
	defer db.Close()
	if _, err := schema.Migrate(ctx, db); err != nil {
		t.Fatalf("migrate the test database: %v", err)
	}
	return pg, dsn
}

func (s *server) start() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []string
	switch {
	case os.Getenv("TEST_DATABASE_URL") != "":
		s.adminURL = os.Getenv("TEST_DATABASE_URL")
	default:
		if err := s.startDocker(); err == nil {
			break
		} else {
			errs = append(errs, "docker: "+err.Error())
		}
		// A cluster with the migrated template, kept from an earlier test binary, spares this
		// one initdb and the migrations (about 2 s of CPU each).
		cache := cacheDir()
		opts := pglocal.Options{Ephemeral: true}
		if _, err := os.Stat(filepath.Join(cache, "PG_VERSION")); err == nil {
			opts.From = cache
		}
		c, err := pglocal.Start(ctx, opts)
		if err != nil && opts.From != "" { // a copy we may not read: start afresh
			opts.From = ""
			c, err = pglocal.Start(ctx, opts)
		}
		if err != nil {
			errs = append(errs, "local binaries: "+err.Error())
			s.err = fmt.Errorf("no PostgreSQL for the tests. Set TEST_DATABASE_URL to a server you can create databases on, "+
				"start a Docker engine, or %s. Tried:\n  %s", pglocal.InstallHint, strings.Join(errs, "\n  "))
			return
		}
		s.adminURL, s.cluster = c.URL("postgres"), c
		s.stop = func() { c.Stop() } //nolint:errcheck // end of the test binary
		s.own = true
		if opts.From == "" {
			s.snapshot = func() { c.Snapshot(ctx, cache) } //nolint:errcheck // best effort: the next binary runs initdb itself
		}
	}
	s.err = s.makeTemplate(ctx)
}

// cacheDir is where a test cluster with the migrated template is kept between test binaries:
// one per user, PostgreSQL installation and schema (db/schema.Fingerprint).
func cacheDir() string {
	bin, _ := pglocal.FindBinaries()
	h := sha256.Sum256([]byte(bin + "\x00" + schema.Fingerprint()))
	return filepath.Join(os.TempDir(), fmt.Sprintf("enclave-dbtest-%d", os.Getuid()), hex.EncodeToString(h[:8]))
}

func (s *server) startDocker() error {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return err
	}
	pool.MaxWait = 2 * time.Minute
	if err := pool.Client.Ping(); err != nil {
		return fmt.Errorf("no engine answers: %w", err)
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: "postgres", Tag: "16-alpine",
		Env: []string{"POSTGRES_PASSWORD=postgres", "POSTGRES_HOST_AUTH_METHOD=trust"},
		Cmd: []string{"postgres", "-c", "fsync=off", "-c", "max_connections=300"},
	}, func(hc *docker.HostConfig) { hc.AutoRemove = true })
	if err != nil {
		return err
	}
	res.Expire(1800) //nolint:errcheck // a safety net if the binary dies
	url := fmt.Sprintf("postgres://postgres:postgres@%s/postgres?sslmode=disable", res.GetHostPort("5432/tcp"))
	if err := pool.Retry(func() error {
		db, err := sql.Open("postgres", url)
		if err != nil {
			return err
		}
		defer db.Close()
		return db.Ping()
	}); err != nil {
		pool.Purge(res) //nolint:errcheck
		return err
	}
	s.adminURL, s.own = url, true
	s.stop = func() { pool.Purge(res) } //nolint:errcheck
	return nil
}

// makeTemplate makes the migrated template and its copies. On a server of this binary's own,
// the template is "enclave_tpl", which a kept cluster already holds (migrating it again checks
// it is current, and costs little); a new one is kept for the next binary (snapshot). On a
// server other binaries share (TEST_DATABASE_URL), it has a name of its own, dropped at the end.
func (s *server) makeTemplate(ctx context.Context) error {
	admin, err := sql.Open("postgres", s.adminURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	s.template = "enclave_tpl"
	exists := false
	if !s.own {
		s.template += "_" + randomHex(6)
		prev := s.stop
		s.stop = func() {
			if a, err := sql.Open("postgres", s.adminURL); err == nil {
				for i := 0; i < copies; i++ {
					a.Exec(`DROP DATABASE IF EXISTS ` + s.copyName(i) + ` WITH (FORCE)`) //nolint:errcheck // best effort
				}
				a.Close()
			}
			if prev != nil {
				prev()
			}
		}
	} else if err := admin.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, s.template).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+s.template); err != nil {
			return fmt.Errorf("create template database: %w", err)
		}
	}
	db, err := sql.Open("postgres", withDatabase(s.adminURL, s.template))
	if err != nil {
		return err
	}
	_, err = schema.Migrate(ctx, db)
	db.Close()
	if err != nil {
		return fmt.Errorf("migrate template database: %w", err)
	}
	if s.snapshot != nil {
		admin.Close() // the server stops and starts again
		s.snapshot()
		if admin, err = sql.Open("postgres", s.adminURL); err != nil {
			return err
		}
		defer admin.Close()
	}
	s.templates = make(chan string, copies)
	s.templates <- s.template
	for i := 1; i < copies; i++ {
		if _, err := admin.ExecContext(ctx, `CREATE DATABASE `+s.copyName(i)+` TEMPLATE `+s.template); err != nil {
			return fmt.Errorf("copy the template database: %w", err)
		}
		s.templates <- s.copyName(i)
	}
	return nil
}

// copyName is the name of the template's i-th copy (the template itself for 0).
func (s *server) copyName(i int) string {
	if i == 0 {
		return s.template
	}
	return fmt.Sprintf("%s_%d", s.template, i)
}

// withDatabase replaces the database name in a URL DSN.
func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return dsn
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) //nolint:errcheck // never fails
	return hex.EncodeToString(b)
}

// databases counts the databases this binary created, for report.
var databases atomic.Int64

// report appends to file, when TEST_CPU_REPORT names one, a line with the processor time of
// this test binary and of the PostgreSQL server it started, and the databases it created:
// most of the suite's time is PostgreSQL's, which go test's own figures omit, and it grows
// with the databases and enclaves a package starts.
func report(file string) {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru) //nolint:errcheck // a diagnostic
	self := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	var server time.Duration
	if srv.cluster != nil {
		server = srv.cluster.CPU()
	}
	dir, _ := os.Getwd()
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%-24s test %6.2fs  postgres %6.2fs  databases %3d\n", filepath.Base(dir), self.Seconds(), server.Seconds(), databases.Load())
}
