package httpserver_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/httpserver"
)

// TestConnectionsAreBounded: over real loopback sockets, a connection over the bound per
// client address, or over the bound in all, is answered 503 SERVICE-UNAVAILABLE with
// Retry-After and closed at once; another address still gets in under its own bound; a
// connection that closes gives its slot back.
func TestConnectionsAreBounded(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := config.Config{HTTPMaxConns: 3, HTTPMaxConnsPerClient: 2}
	reg := prometheus.NewRegistry()
	ln, err := httpserver.Listen("127.0.0.1:0", cfg, log, reg)
	require.NoError(t, err)
	srv := httpserver.New(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }), log, cfg)
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	// dial connects from the loopback address from (127.0.0.x: every one is this machine).
	dial := func(from string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", itoa(port)))
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second)) // a test that fails never hangs
		return c
	}
	// served asks c for / and reports whether it was served.
	served := func(c net.Conn) bool {
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return false
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	// refused reads, asking nothing, the refusal of c: 503 with Retry-After and the error
	// envelope, then the end of the connection.
	refused := func(c net.Conn) {
		t.Helper()
		r := bufio.NewReader(c)
		resp, err := http.ReadResponse(r, nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
		require.JSONEq(t, `{"code":"SERVICE-UNAVAILABLE","message":"too many connections; try again shortly"}`, string(body))
		_, err = r.ReadByte()
		require.ErrorIs(t, err, io.EOF, "and the connection is closed")
	}

	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	require.True(t, served(a1))
	require.True(t, served(a2))
	refused(dial("127.0.0.1")) // a third from one address
	b1 := dial("127.0.0.2")
	require.True(t, served(b1), "another address has its own bound")
	refused(dial("127.0.0.3")) // a fourth in all

	// Each refusal is counted by the bound it met; the connections held are shown.
	require.Equal(t, 1.0, (metric(t, reg, "enclave_http_connections_refused_total", "per_client")))
	require.Equal(t, 1.0, (metric(t, reg, "enclave_http_connections_refused_total", "total")))
	require.Equal(t, 3.0, (metric(t, reg, "enclave_http_connections_open", "")))

	require.NoError(t, a1.Close())
	require.Eventually(t, func() bool { return served(dial("127.0.0.3")) }, 5*time.Second, 20*time.Millisecond,
		"a closed connection gives its slot back")
}

// metric is the value of the series of name (with bound, when given) that reg gathers.
func metric(t *testing.T, reg *prometheus.Registry, name, bound string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if bound == "" || (len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == bound) {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{bound=%q}", name, bound)
	return 0
}

func itoa(n int) string { return (&net.TCPAddr{Port: n}).String()[1:] }

// TestDefaultBoundFollowsTheOpenFileLimit: by default the bound leaves room for everything
// else the process opens, and one client may take half.
func TestDefaultBoundFollowsTheOpenFileLimit(t *testing.T) {
	t.Parallel()
	n := httpserver.MaxConns(config.Config{})
	require.GreaterOrEqual(t, n, 64)
	require.LessOrEqual(t, n, 10000)
	require.Equal(t, n/2, httpserver.MaxConnsPerClient(config.Config{}))
	require.Equal(t, 7, httpserver.MaxConns(config.Config{HTTPMaxConns: 7}))
	require.Equal(t, 5, httpserver.MaxConnsPerClient(config.Config{HTTPMaxConns: 7, HTTPMaxConnsPerClient: 5}))
}
