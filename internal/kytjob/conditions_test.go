package kytjob_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytsim"
)

// Production conditions (issue 9): receivers that redirect or are slow, and a Chainalysis
// slower than CHAINALYSIS_TIMEOUT.

// TestRedirectingReceiverIsNeverDelivered: a receiver behind a load balancer that redirects to
// a login page answers 302; the redirect is not followed (no request reaches the page, with or
// without the token), the attempt is recorded with its status, retried, and ends FAILED.
func TestRedirectingReceiverIsNeverDelivered(t *testing.T) {
	t.Parallel()
	var redirected, landed atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/landing" {
			landed.Add(1)
			w.WriteHeader(http.StatusOK)
			return
		}
		redirected.Add(1)
		http.Redirect(w, r, "/landing", http.StatusFound)
	}))
	defer rcv.Close()
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.CallbackURL = rcv.URL + "/callbacks" }})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id := e.Assess(v, "")
	var cb struct {
		Status         string `db:"status"`
		Attempts       int    `db:"attempts"`
		LastStatusCode *int   `db:"last_status_code"`
		LastError      string `db:"last_error"`
	}
	require.Eventually(t, func() bool {
		err := e.DB.Get(&cb, `SELECT status, attempts, last_status_code, coalesce(last_error, '') AS last_error FROM callbacks WHERE request_id = $1`, id)
		return err == nil && cb.Status == "FAILED"
	}, wait, 20*time.Millisecond, "the callback ends FAILED after its schedule, never DELIVERED")
	require.Equal(t, 3, cb.Attempts, "every attempt of the schedule was made")
	require.NotNil(t, cb.LastStatusCode)
	require.Equal(t, http.StatusFound, *cb.LastStatusCode)
	require.Contains(t, cb.LastError, "redirect")
	require.EqualValues(t, 3, redirected.Load())
	require.Zero(t, landed.Load(), "the redirect was never followed")
	require.Equal(t, "PROCESSED", e.Get(id).RiskAssessment.ChainalysisKYT.Status, "the assessment itself is done")
}

// TestSlowReceiverDoesNotHoldBackScreening: with two assessment workers and a receiver that
// does not answer until released, every assessment is still registered, polled and
// PROCESSED; once the receiver answers, every callback is delivered.
func TestSlowReceiverDoesNotHoldBackScreening(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := et.Start(t, et.Options{
		Config: func(c *config.Config) { c.Workers, c.CallbackWorkers = 2, 2 },
		Tuning: app.Tuning{CallbackTimeout: time.Minute, CallbackSchedule: []time.Duration{0, 20 * time.Millisecond}},
	})
	e.Receiver.Respond(func(int, *http.Request) int {
		<-release
		return http.StatusNoContent
	})
	var ids []string
	for range 6 {
		v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
		ids = append(ids, e.Assess(v, ""))
	}
	require.Eventually(t, func() bool {
		var n int
		e.DB.Get(&n, `SELECT count(*) FROM kyt_results WHERE status = 'PROCESSED'`)
		return n == len(ids)
	}, wait, 20*time.Millisecond, "all screened while the receiver holds both delivery workers")
	var delivered int
	require.NoError(t, e.DB.Get(&delivered, `SELECT count(*) FROM callbacks WHERE status = 'DELIVERED'`))
	require.Zero(t, delivered)
	close(release)
	for _, id := range ids {
		require.Equal(t, "PROCESSED", e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT.Status)
	}
}

// TestChainalysisSlowerThanTheTimeoutIsRetried: calls that take longer than
// CHAINALYSIS_TIMEOUT are cut short and retried; once Chainalysis answers in time the
// assessment ends PROCESSED.
func TestChainalysisSlowerThanTheTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{
		Sim:    kytsim.Options{Faults: kytsim.Faults{LatencyMillis: 1500}},
		Config: func(c *config.Config) { c.ChainalysisTimeout = 300 * time.Millisecond },
	})
	v := e.CreateOutgoing("BTC", "", "1", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH")
	id := e.Assess(v, "")
	require.Eventually(t, func() bool {
		return strings.Count(e.Logs.String(), "no answer within 300ms (CHAINALYSIS_TIMEOUT)") >= 2
	}, wait, 20*time.Millisecond, "calls cut short at the timeout, and tried again")
	require.Equal(t, "PENDING", e.Get(id).RiskAssessment.ChainalysisKYT.Status, "a timeout is transient: not an ERROR")
	e.Sim.SetFaults(kytsim.Faults{LatencyMillis: 50})
	k := e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount)
}
