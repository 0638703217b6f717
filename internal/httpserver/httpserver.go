// Package httpserver is the enclave's HTTP server as serve runs it: its timeouts, and a listener
// that bounds the connections held at once, in all and per client address. serve and the tests
// build it here, so the tests exercise the figures production runs with.
//
// What Go's server answers before any handler runs — a request line or header it cannot parse
// (400), headers over MaxHeaderBytes (431), an unsupported Expect (417) — is its plain text, not
// {code,message}; a connection over the bound gets the enclave's 503 JSON from the listener.
package httpserver

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/logthrottle"
)

// Fixed figures of the server; the others are in config (ENCLAVE_HTTP_*).
const (
	// ReadHeaderTimeout bounds reading a request's headers: a client that trickles them is
	// cut off.
	ReadHeaderTimeout = 5 * time.Second
	// IdleTimeout closes a keep-alive connection nobody uses.
	IdleTimeout = 2 * time.Minute
	// MaxHeaderBytes caps a request's headers (Go answers 431 above it).
	MaxHeaderBytes = 64 << 10
	// maxDefaultConns caps the default bound: each connection costs a goroutine and buffers.
	maxDefaultConns = 10000
)

// New returns the server serve runs: h behind the configured timeouts. Go's own complaints
// (accept errors, TLS handshakes, bad requests) go to log as warnings, each repeated at most
// once every 30 s.
func New(h http.Handler, log *slog.Logger, cfg config.Config) *http.Server {
	quiet := slog.New(logthrottle.New(log.Handler(), 30*time.Second, slog.LevelWarn))
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       cmp.Or(cfg.HTTPReadTimeout, config.DefaultHTTPReadTimeout),
		WriteTimeout:      cmp.Or(cfg.HTTPWriteTimeout, config.DefaultHTTPWriteTimeout),
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(quiet.Handler(), slog.LevelWarn),
	}
}

// MaxConns is the bound on connections held at once: cfg.HTTPMaxConns, or by default half the
// process's open-file limit (Go raises the soft limit to the hard one at start), at most
// 10,000 and at least 64. The other half stays for the database pools and the connections to
// Chainalysis, callbacks and counterparties.
func MaxConns(cfg config.Config) int {
	if cfg.HTTPMaxConns > 0 {
		return cfg.HTTPMaxConns
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur == 0 {
		return 1024
	}
	return int(max(64, min(r.Cur/2, maxDefaultConns)))
}

// MaxConnsPerClient is the bound on connections from one IP address: cfg.HTTPMaxConnsPerClient
// or half of MaxConns.
func MaxConnsPerClient(cfg config.Config) int {
	if cfg.HTTPMaxConnsPerClient > 0 {
		return cfg.HTTPMaxConnsPerClient
	}
	return max(1, MaxConns(cfg)/2)
}

// Listen listens on addr (":0" picks a port) with the bounds of cfg (see Limit), its figures
// registered with reg (nil: none).
func Listen(addr string, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return Limit(ln, cfg, log, reg)
}

// Limit bounds the connections ln hands out: at most MaxConns at once, and MaxConnsPerClient
// from one IP address. A connection over either bound is refused at once — a 503
// SERVICE-UNAVAILABLE with Retry-After, then closed — rather than left waiting in the backlog,
// so the process never runs out of file descriptors for its database and a client learns why.
// With reg, /metrics shows the connections held (enclave_http_connections_open) and those
// refused by bound (enclave_http_connections_refused_total{bound="total"|"per_client"}): a
// refusal is logged at most once per 30 s, so the count is where a flood shows.
func Limit(ln net.Listener, cfg config.Config, log *slog.Logger, reg prometheus.Registerer) (net.Listener, error) {
	l := &limited{Listener: ln, max: MaxConns(cfg), perClient: MaxConnsPerClient(cfg),
		log: slog.New(logthrottle.New(log.Handler(), 30*time.Second, slog.LevelWarn)), byClient: map[string]int{},
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "enclave_http_connections_refused_total",
			Help: "Connections refused with a 503 at accept because a bound was reached: total (ENCLAVE_HTTP_MAX_CONNS) or per_client (ENCLAVE_HTTP_MAX_CONNS_PER_CLIENT).",
		}, []string{"bound"})}
	l.refused.WithLabelValues("total")
	l.refused.WithLabelValues("per_client")
	open := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "enclave_http_connections_open",
		Help: "Connections the HTTP server holds now, of at most ENCLAVE_HTTP_MAX_CONNS.",
	}, func() float64 { l.mu.Lock(); defer l.mu.Unlock(); return float64(l.open) })
	if reg != nil {
		for _, c := range []prometheus.Collector{l.refused, open} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("httpserver: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

type limited struct {
	net.Listener
	max, perClient int
	log            *slog.Logger
	refused        *prometheus.CounterVec

	mu       sync.Mutex
	open     int
	byClient map[string]int
}

// refusal is the whole answer to a connection over the bound.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: 82\r\n\r\n" +
	`{"code":"SERVICE-UNAVAILABLE","message":"too many connections; try again shortly"}`

func (l *limited) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err // http.Server backs off on temporary errors (EMFILE): 5 ms doubling to 1 s
		}
		client := clientOf(c)
		l.mu.Lock()
		bound := ""
		switch {
		case l.open >= l.max:
			bound = "total"
		case l.byClient[client] >= l.perClient:
			bound = "per_client"
		}
		over := bound != ""
		if !over {
			l.open++
			l.byClient[client]++
		}
		l.mu.Unlock()
		if !over {
			return &counted{Conn: c, release: func() { l.release(client) }}, nil
		}
		l.refused.WithLabelValues(bound).Inc()
		l.log.Warn("connection refused: too many open", "client", client, "bound", bound, "max", l.max, "maxPerClient", l.perClient)
		// A fresh socket's send buffer takes the refusal whole; the deadline only guards
		// against the impossible.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)) //nolint:errcheck
		c.Write([]byte(refusal))                                   //nolint:errcheck
		c.Close()
	}
}

func (l *limited) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byClient[client]--; l.byClient[client] <= 0 {
		delete(l.byClient, client)
	}
}

// clientOf is the IP address a connection comes from.
func clientOf(c net.Conn) string {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr().String())
	if err != nil {
		return c.RemoteAddr().String()
	}
	return host
}

// counted gives its slot back once, however often it is closed.
type counted struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *counted) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
