package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
)

// shortTimeouts are the server's read and write timeouts shrunk below the waits the tests
// ask for, so that a wait outlasting them takes seconds, not the 30 s of production.
func shortTimeouts(c *config.Config) {
	c.HTTPReadTimeout, c.HTTPWriteTimeout = time.Second, time.Second
}

// postWait posts a KYT assessment of verification v with Prefer: wait=seconds and returns the
// answer's status, headers and body; a connection cut before the answer is an error.
func postWait(ctx context.Context, hc *http.Client, base, v string, seconds int) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/risk-assessment/chainalysis-kyt",
		strings.NewReader(fmt.Sprintf(`{"verificationUuid":%q}`, v)))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+et.APIKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Prefer", fmt.Sprintf("wait=%d", seconds))
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// requirePlain checks a wait that ran out: 200 with exactly {"requestId"} and no
// Preference-Applied.
func requirePlain(t *testing.T, status int, h http.Header, body []byte) string {
	t.Helper()
	require.Equal(t, http.StatusOK, status, "%s", body)
	require.Empty(t, h.Get("Preference-Applied"))
	var plain map[string]string
	require.NoError(t, json.Unmarshal(body, &plain), "%s", body)
	require.Len(t, plain, 1, "%s", body)
	require.NotEmpty(t, plain["requestId"])
	return plain["requestId"]
}

// TestPreferWaitOutlastingTheServerTimeoutsIsAnswered: with Chainalysis down (kytsim's
// PUT /_sim/faults {"down":true}), a Prefer: wait longer than the server's read and write
// timeouts — through the server exactly as serve builds it — gets its plain {"requestId"}, not
// an empty reply, and the assessment it names exists.
func TestPreferWaitOutlastingTheServerTimeoutsIsAnswered(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Config: shortTimeouts})
	req, err := http.NewRequest("PUT", e.Sim.URL+"/_sim/faults", bytes.NewReader([]byte(`{"down":true}`)))
	require.NoError(t, err)
	req.Header.Set("Token", et.KYTKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	v := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	status, h, body, err := postWait(ctx, http.DefaultClient, e.URL, v, 3)
	require.NoError(t, err, "the answer arrived")
	id := requirePlain(t, status, h, body)
	r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt/"+id, nil, nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// The connection is still good for the next request.
	status, h, body, err = postWait(ctx, http.DefaultClient, e.URL, v, 2)
	require.NoError(t, err)
	requirePlain(t, status, h, body)
}

// waiters is how many clients TestPreferWaitManyWaitersAreAllAnswered starts: 400 keeps the
// suite quick on two cores; the 2,000 is -args -waiters=2000.
var waiters = flag.Int("waiters", 400, "concurrent Prefer: wait clients of TestPreferWaitManyWaitersAreAllAnswered")

// TestPreferWaitManyWaitersAreAllAnswered: many clients waiting at once, longer than the
// server's timeouts, on assessments nobody works (an API-only replica: as good as a
// Chainalysis that never answers), each get their own answer.
func TestPreferWaitManyWaitersAreAllAnswered(t *testing.T) {
	t.Parallel()
	n := *waiters
	e := et.Start(t, et.Options{APIOnly: true, Config: shortTimeouts})
	v := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer hc.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type answer struct {
		status int
		h      http.Header
		body   []byte
		err    error
	}
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			a := &answers[i]
			a.status, a.h, a.body, a.err = postWait(ctx, hc, e.URL, v, 2)
		})
	}
	wg.Wait()
	ids := map[string]bool{}
	for i, a := range answers {
		require.NoError(t, a.err, "waiter %d got no answer", i)
		ids[requirePlain(t, a.status, a.h, a.body)] = true
	}
	require.Len(t, ids, n, "each waiter its own assessment")
}
