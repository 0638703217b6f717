package chainalysis_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/kytsim"
)

const key = "kyt-key-that-must-never-leak"

func newClient(t *testing.T, base string, reg prometheus.Registerer) *chainalysis.Client {
	t.Helper()
	c, err := chainalysis.New(chainalysis.Options{BaseURL: base, APIKey: key, Registerer: reg})
	require.NoError(t, err)
	return c
}

func num(s string) *json.Number { n := json.Number(s); return &n }

func TestTransferWorkflowAgainstSandbox(t *testing.T) {
	t.Parallel()
	clk := kytsim.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	sim := kytsim.NewServer(kytsim.Options{APIKey: key, TransferDelay: 2 * time.Second, Now: clk.Now})
	defer sim.Close()
	reg := prometheus.NewRegistry()
	c := newClient(t, sim.URL+"/api/kyt", reg)
	ctx := context.Background()

	req := chainalysis.RegisterTransferRequest{Network: "Ethereum", Asset: "ETH", Direction: chainalysis.Sent,
		TransferReference: "0xe823c9b7:0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", AssetAmount: num("2.5")}
	tr, err := c.RegisterTransfer(ctx, "vasp/15952089931162059995", req)
	require.NoError(t, err)
	require.False(t, tr.Processed())
	require.Equal(t, "ETHEREUM", tr.Network)

	// Registering again is idempotent: same externalId.
	again, err := c.RegisterTransfer(ctx, "vasp/15952089931162059995", req)
	require.NoError(t, err)
	require.Equal(t, tr.ExternalID, again.ExternalID)

	sum, err := c.TransferSummary(ctx, tr.ExternalID)
	require.NoError(t, err)
	require.False(t, sum.Processed(), "still processing")
	require.Nil(t, sum.USDAmount)

	clk.Add(2 * time.Second)
	sum, err = c.TransferSummary(ctx, tr.ExternalID)
	require.NoError(t, err)
	require.True(t, sum.Processed())
	require.Equal(t, "4550.43", sum.USDAmount.String(), "2.5 ETH at 1820.17, 4550.425 rounded half-up to cents")
	require.Equal(t, "0xe823c9b7", *sum.Tx)
	updated, err := chainalysis.ParseTime(*sum.UpdatedAt)
	require.NoError(t, err)
	require.Equal(t, clk.Now(), updated)

	alerts, err := c.TransferAlerts(ctx, tr.ExternalID)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	require.Equal(t, "SEVERE", alerts[0].AlertLevel)
	require.Equal(t, "sanctioned entity", *alerts[0].Category)
	require.Equal(t, "4550.43", alerts[0].AlertAmount.String())

	// The user id was escaped into one path segment, under the base URL's prefix.
	var paths []string
	for _, r := range sim.Requests() {
		paths = append(paths, r.Path)
	}
	require.Contains(t, paths, "/v2/users/vasp%2F15952089931162059995/transfers")

	require.Equal(t, 2.0, testutil.ToFloat64(mustCounter(t, reg, "register_transfer", "ok")))
}

func mustCounter(t *testing.T, reg *prometheus.Registry, endpoint, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "enclave_chainalysis_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["outcome"] == outcome {
				g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
				g.Set(m.GetCounter().GetValue())
				return g
			}
		}
	}
	t.Fatalf("no %s/%s sample", endpoint, outcome)
	return nil
}

func TestAttemptWorkflowAgainstSandbox(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: key})
	defer sim.Close()
	c := newClient(t, sim.URL, nil)
	ctx := context.Background()
	at, err := c.RegisterAttempt(ctx, "withdrawal_attempt_test", chainalysis.RegisterAttemptRequest{
		Network: "Bitcoin", Asset: "BTC", Address: "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH",
		AttemptIdentifier: "attempt11234", AssetAmount: "1.0", AttemptTimestamp: "2022-06-07T17:25:40.008Z",
	})
	require.NoError(t, err)
	require.True(t, at.Processed(), "an attempt is processed at registration")
	require.Equal(t, "29877.50", at.USDAmount.String())
	sum, err := c.AttemptSummary(ctx, at.ExternalID)
	require.NoError(t, err)
	require.Equal(t, at, sum)
	alerts, err := c.AttemptAlerts(ctx, at.ExternalID)
	require.NoError(t, err)
	require.Len(t, alerts, 1)
	require.Equal(t, "SEVERE", alerts[0].AlertLevel)
	require.Equal(t, "child abuse material", *alerts[0].Category)
	require.Equal(t, 1, *alerts[0].CategoryID)

	// A clean address raises nothing.
	clean, err := c.RegisterAttempt(ctx, "u", chainalysis.RegisterAttemptRequest{Network: "Ethereum", Asset: "ETH",
		Address: "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1", AttemptIdentifier: "a2", AssetAmount: "1", AttemptTimestamp: "2024-01-01T00:00:00Z"})
	require.NoError(t, err)
	alerts, err = c.AttemptAlerts(ctx, clean.ExternalID)
	require.NoError(t, err)
	require.Empty(t, alerts)
}

func TestSandboxRefusalsArePermanent(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: "other-key"})
	defer sim.Close()
	c := newClient(t, sim.URL, nil)
	_, err := c.TransferSummary(context.Background(), "53844b3c-510d-3a30-bb69-9566bcc0a5a6")
	var e *chainalysis.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, 403, e.StatusCode)
	require.False(t, e.Transient)
	require.Contains(t, e.Message, "API key")
	require.NotContains(t, err.Error(), key)

	good := kytsim.NewServer(kytsim.Options{APIKey: key})
	defer good.Close()
	c = newClient(t, good.URL, nil)
	_, err = c.TransferSummary(context.Background(), "no-such-transfer")
	require.ErrorAs(t, err, &e)
	require.Equal(t, 404, e.StatusCode)
	require.False(t, chainalysis.IsTransient(err))
	_, err = c.RegisterTransfer(context.Background(), "u", chainalysis.RegisterTransferRequest{Network: "Ethereum", Asset: "ETH",
		Direction: "sent", TransferReference: "0xabc"})
	require.ErrorAs(t, err, &e)
	require.Equal(t, 400, e.StatusCode)
	require.Contains(t, e.Message, "transferReference", "Chainalysis's own message is kept")
}

func TestErrorClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		transient  bool
		retryAfter time.Duration
		message    string
	}{
		{"HTMLForbidden", 403, map[string]string{"Content-Type": "text/html"}, "<html><body><h1>403 Forbidden</h1></body></html>", false, 0, "Forbidden"},
		{"JSONBadRequest", 400, nil, `{"status":400,"message":"Invalid asset"}`, false, 0, "Invalid asset"},
		{"ErrorField", 409, nil, `{"error":"Conflict with another user"}`, false, 0, "Conflict with another user"},
		{"NotAcceptable", 406, nil, `not json`, false, 0, "not json"},
		{"NotFound", 404, nil, ``, false, 0, "Not Found"},
		{"TooManyWithRetryAfter", 429, map[string]string{"Retry-After": "7"}, `{"message":"slow down"}`, true, 7 * time.Second, "slow down"},
		{"TooManyWithout", 429, nil, ``, true, 0, "Too Many Requests"},
		{"Internal", 500, nil, `{"message":"boom"}`, true, 0, "boom"},
		{"BadGateway", 502, map[string]string{"Content-Type": "text/html"}, `<html>bad gateway</html>`, true, 0, "Bad Gateway"},
		{"Unavailable", 503, nil, ``, true, 0, "Service Unavailable"},
		{"GatewayTimeout", 504, nil, ``, true, 0, "Gateway Timeout"},
		{"MalformedJSON", 200, nil, `{"externalId": `, true, 0, "not the JSON expected"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c := newClient(t, srv.URL, nil)
			_, err := c.TransferSummary(context.Background(), "x")
			var e *chainalysis.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tc.transient, e.Transient)
			require.Equal(t, tc.transient, chainalysis.IsTransient(err))
			d, ok := chainalysis.RetryAfter(err)
			require.Equal(t, tc.retryAfter, d)
			require.Equal(t, tc.retryAfter > 0, ok)
			require.Contains(t, e.Message, tc.message)
			require.NotContains(t, e.Message, "<html")
		})
	}
}

func TestTransportFailuresAreTransient(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	c := newClient(t, slow.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.AttemptSummary(ctx, "x")
	require.True(t, chainalysis.IsTransient(err), "%v", err)
	require.Contains(t, err.Error(), "deadline")

	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	c = newClient(t, url, nil)
	_, err = c.AttemptSummary(context.Background(), "x")
	require.True(t, chainalysis.IsTransient(err), "connection refused: %v", err)
	require.NotContains(t, err.Error(), key)
}

func TestRequestHeaders(t *testing.T) {
	t.Parallel()
	var got http.Header
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.Write([]byte(`{"externalId":"e"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	_, err := c.RegisterAttempt(context.Background(), "u", chainalysis.RegisterAttemptRequest{AssetAmount: "1"})
	require.NoError(t, err)
	require.Equal(t, key, got.Get("Token"))
	require.Equal(t, "application/json", got.Get("Accept"))
	require.Equal(t, "application/json", got.Get("Content-Type"))
}

// TestTooManyRequestsHoldsEveryCaller: after a 429 with Retry-After, no call leaves this
// process until the wait is over, whichever caller it comes from.
func TestTooManyRequestsHoldsEveryCaller(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	_, err := c.TransferSummary(context.Background(), "x")
	require.True(t, chainalysis.IsTransient(err))
	require.EqualValues(t, 1, hits.Load())

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.AttemptAlerts(ctx, "y")
	require.True(t, chainalysis.IsTransient(err))
	require.Contains(t, err.Error(), "rate limit")
	require.EqualValues(t, 1, hits.Load(), "the second call never reached the server")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := chainalysis.New(chainalysis.Options{BaseURL: "ftp://x", APIKey: "k"})
	require.Error(t, err)
	_, err = chainalysis.New(chainalysis.Options{BaseURL: "https://api.chainalysis.com/api/kyt"})
	require.ErrorContains(t, err, "API key is required")
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Time{
		"2022-06-08T19:26:12.690702":    time.Date(2022, 6, 8, 19, 26, 12, 690702000, time.UTC),
		"2022-06-13T13:26:16.778+00:00": time.Date(2022, 6, 13, 13, 26, 16, 778000000, time.UTC),
		"2021-01-12T06:11:30Z":          time.Date(2021, 1, 12, 6, 11, 30, 0, time.UTC),
		"2021-01-12T08:11:30+02:00":     time.Date(2021, 1, 12, 6, 11, 30, 0, time.UTC),
	} {
		got, err := chainalysis.ParseTime(in)
		require.NoError(t, err, in)
		require.True(t, want.Equal(got), "%s: %s", in, got)
	}
	_, err := chainalysis.ParseTime("yesterday")
	require.Error(t, err)
	require.False(t, strings.Contains(err.Error(), key))
}

// TestAnswersAreStorable: NUL characters in any string of an answer (which PostgreSQL's text and
// jsonb refuse) are gone once decoded, however deep.
func TestAnswersAreStorable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"total":1,"data":[{"alertIdentifier":"a\u0000b","service":"S\u0000","level":"HIGH","userId":"u",
			"createdAt":"2026-01-01T00:00:00Z","asset":"ETH","direction":"SENT","exposureType":"DIRECT","alertStatus":"Flag\u0000ged","alertAmountUsd":1}]}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil)
	page, err := c.Alerts(context.Background(), chainalysis.AlertsQuery{})
	require.NoError(t, err)
	a := page.Data[0]
	require.Equal(t, "ab", a.AlertIdentifier)
	require.Equal(t, "S", *a.Service)
	require.Equal(t, "Flagged", a.AlertStatus)
}

// TestHostileIDsCannotChangeThePath: whatever a VASP id, an address or an externalId holds, the
// call goes to its own endpoint with the id as one path segment, or — for "", "." and "..",
// which a server would resolve — is refused, permanently, before anything is sent.
func TestHostileIDsCannotChangeThePath(t *testing.T) {
	t.Parallel()
	var paths atomic.Value
	paths.Store([]string(nil))
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths.Store(append(paths.Load().([]string), r.URL.EscapedPath()))
		mu.Unlock()
		w.Write([]byte(`{"externalId":"e","userId":"u","address":"a","status":"COMPLETE"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL+"/api/kyt", nil)
	ctx := context.Background()
	calls := map[string]struct {
		call   func(id string) error
		prefix string // the path before the id; suffix after it
		suffix string
	}{
		"RegisterTransfer": {func(id string) error {
			_, err := c.RegisterTransfer(ctx, id, chainalysis.RegisterTransferRequest{})
			return err
		}, "/api/kyt/v2/users/", "/transfers"},
		"RegisterAttempt": {func(id string) error {
			_, err := c.RegisterAttempt(ctx, id, chainalysis.RegisterAttemptRequest{})
			return err
		}, "/api/kyt/v2/users/", "/withdrawal-attempts"},
		"TransferSummary": {func(id string) error { _, err := c.TransferSummary(ctx, id); return err }, "/api/kyt/v2/transfers/", ""},
		"TransferAlerts":  {func(id string) error { _, err := c.TransferAlerts(ctx, id); return err }, "/api/kyt/v2/transfers/", "/alerts"},
		"AttemptSummary":  {func(id string) error { _, err := c.AttemptSummary(ctx, id); return err }, "/api/kyt/v2/withdrawal-attempts/", ""},
		"AttemptAlerts":   {func(id string) error { _, err := c.AttemptAlerts(ctx, id); return err }, "/api/kyt/v2/withdrawal-attempts/", "/alerts"},
		"User":            {func(id string) error { _, err := c.User(ctx, id); return err }, "/api/kyt/v1/users/", ""},
		"Entity":          {func(id string) error { _, err := c.Entity(ctx, id); return err }, "/api/kyt/v2/entities/", ""},
	}
	for name, call := range calls {
		for _, id := range []string{"..", ".", ""} {
			err := call.call(id)
			require.Error(t, err, "%s(%q)", name, id)
			require.False(t, chainalysis.IsTransient(err), "%s(%q): refused for good, not retried for a day", name, id)
		}
		for _, id := range []string{"../../v1/alerts", "a/b", "a?b=1", "a#frag", "%2e%2e", "%2F", "a b", ".../x", "./x"} {
			before := len(paths.Load().([]string))
			require.NoError(t, call.call(id), "%s(%q)", name, id)
			got := paths.Load().([]string)
			require.Len(t, got, before+1)
			p := got[len(got)-1]
			require.True(t, strings.HasPrefix(p, call.prefix) && strings.HasSuffix(p, call.suffix), "%s(%q) went to %s", name, id, p)
			seg := strings.TrimSuffix(strings.TrimPrefix(p, call.prefix), call.suffix)
			require.NotContains(t, seg, "/", "%s(%q): one segment", name, id)
			un, err := url.PathUnescape(seg)
			require.NoError(t, err)
			require.Equal(t, id, un, "%s: the id arrives as it was", name)
		}
	}
	require.Empty(t, slicesFilter(paths.Load().([]string), func(p string) bool {
		return strings.Contains(p, "/./") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.") || strings.HasSuffix(p, "/..") || strings.Contains(p, "//")
	}), "no dot or empty segment was ever sent")
}

func slicesFilter(s []string, keep func(string) bool) (out []string) {
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
