package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/retry"
)

// devEnclave is one of the two enclaves dev runs, wired as serve wires it, on its own database
// and port. Its API can be stopped and started again while its workers run on (pause, resume):
// dev's story stops the demo counterparty to show it DOWN.
type devEnclave struct {
	base   string
	addr   string // where its API listens, to listen there again on resume
	h      http.Handler
	served chan error // an end of serving that nobody asked for
	stop   func()

	mu  sync.Mutex
	srv *http.Server // nil while paused
}

// startDevEnclave migrates cfg's database, starts the enclave's workers and serves its API on ln
// and its TRP listener on trpLn. stop undoes it all, in the order serve does.
func startDevEnclave(ctx context.Context, cfg config.Config, log *slog.Logger, ln, trpLn net.Listener) (*devEnclave, error) {
	pools, err := app.Open(ctx, cfg.DatabaseURL, cfg.PipelineConnections)
	if err != nil {
		return nil, err
	}
	if _, err := schema.Migrate(ctx, pools.API.DB); err != nil {
		pools.Close()
		return nil, err
	}
	// Polls from 250 ms (1 s in production): a kytsim transfer is answered as soon as it is
	// processed, which keeps the story brisk.
	a, err := app.New(cfg, log, pools, app.Tuning{KYT: kytjob.Config{Poll: retry.Backoff{Base: 250 * time.Millisecond}}})
	if err != nil {
		pools.Close()
		return nil, err
	}
	if err := a.Start(context.WithoutCancel(ctx)); err != nil {
		a.Close()
		pools.Close()
		return nil, err
	}
	e := &devEnclave{base: "http://" + hostPort(ln.Addr()), addr: ln.Addr().String(), h: a.Handler, served: make(chan error, 1)}
	e.serve(ln)
	trpSrv := &http.Server{Handler: a.TRPHandler, ReadHeaderTimeout: 5 * time.Second}
	if a.TRPHandler != nil && trpLn != nil {
		go func() {
			if err := trpSrv.Serve(trpLn); !errors.Is(err, http.ErrServerClosed) {
				e.served <- err
			}
		}()
	}
	e.stop = func() {
		trpSrv.Close() //nolint:errcheck // closing is all that is wanted
		e.mu.Lock()
		if e.srv != nil {
			e.srv.Close()
		}
		e.mu.Unlock()
		stopRiver(log, a, cfg.ShutdownTimeout)
		a.Close() // after River stops: the listener of Prefer: wait
		pools.Close()
	}
	return e, nil
}

// serve serves the API on ln. Must not hold e.mu.
func (e *devEnclave) serve(ln net.Listener) {
	srv := &http.Server{Handler: e.h, ReadHeaderTimeout: 5 * time.Second}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			e.served <- err
		}
	}()
}

// pause stops the API, closing its listener and connections, as if the enclave were gone; its
// workers go on. It reports whether the API was serving.
func (e *devEnclave) pause() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.srv == nil {
		return false
	}
	e.srv.Close() //nolint:errcheck // closing is all that is wanted
	e.srv = nil
	return true
}

// resume serves the API again on the address it had.
func (e *devEnclave) resume() error {
	ln, err := net.Listen("tcp", e.addr)
	if err != nil {
		return fmt.Errorf("dev: listen on %s again: %w", e.addr, err)
	}
	e.serve(ln)
	return nil
}

// shutdown stops the API gracefully, letting requests in flight finish.
func (e *devEnclave) shutdown(ctx context.Context) error {
	e.mu.Lock()
	srv := e.srv
	e.mu.Unlock()
	if srv == nil {
		return nil
	}
	return srv.Shutdown(ctx)
}

// devKeys are one dev enclave's own secrets.
type devKeys struct {
	APIKey         string `json:"apiKey"`
	CallbackSecret string `json:"callbackSecret"`
	CallbackToken  string `json:"callbackToken"`
	// DataKeyset seals the personal data the enclave stores (ENCLAVE_DATA_KEYSET): kept with
	// the data, or it could not be read again.
	DataKeyset string `json:"dataKeyset"`
}

func (k devKeys) complete() bool {
	return k.APIKey != "" && k.CallbackSecret != "" && k.CallbackToken != "" && k.DataKeyset != ""
}

// writeDevPeers writes a peers file (ENCLAVE_PEERS_FILE) naming peers and reads it back as serve
// would: each dev enclave is configured from its own, as two `enclave serve` would be.
func writeDevPeers(path string, peers []config.Peer) ([]config.Peer, error) {
	type peer struct {
		VaspID string `json:"vaspId"`
		Name   string `json:"name"`
		URL    string `json:"url"`
		Secret string `json:"secret"`
	}
	var f struct {
		Peers []peer `json:"peers"`
	}
	for _, p := range peers {
		f.Peers = append(f.Peers, peer{p.VaspID, p.Name, p.URL, p.Secret})
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("dev: write the peers file %s: %w", path, err)
	}
	return loadPeersFile(path)
}

// loadPeersFile reads a peers file as serve reads ENCLAVE_PEERS_FILE.
func loadPeersFile(path string) ([]config.Peer, error) {
	c := config.Load(func(k string) string {
		if k == "ENCLAVE_PEERS_FILE" {
			return path
		}
		return ""
	})
	if err := c.Validate(0); err != nil {
		return nil, err
	}
	return c.Peers, nil
}

// counterpartyDatabase makes, if need be, the second enclave's database beside ours (dev's demo
// counterparty, bench --exchange's beneficiary): on the same server, named after ours with
// "_counterparty". It returns its DSN.
func counterpartyDatabase(ctx context.Context, ours string) (string, error) {
	u, err := url.Parse(ours)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("dev: DATABASE_URL must be a postgres:// URL, so that dev can make the demo counterparty's database beside it")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		name = "postgres"
	}
	name += "_counterparty"
	db, err := app.OpenDB(ctx, ours, 1)
	if err != nil {
		return "", err
	}
	defer db.Close()
	var exists bool
	if err := db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return "", fmt.Errorf("dev: look for the counterparty's database: %w", err)
	}
	if !exists {
		if _, err := db.ExecContext(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil && !strings.Contains(err.Error(), "42P04") {
			return "", fmt.Errorf("dev: create the counterparty's database %s: %w", name, err)
		}
	}
	u.Path = "/" + name
	return u.String(), nil
}

// devPeersPaths are the two peers files dev writes beside dev.json.
func devPeersPaths(stateDir string) (ours, theirs string) {
	return filepath.Join(stateDir, "peers.json"), filepath.Join(stateDir, "counterparty-peers.json")
}
