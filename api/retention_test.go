package api_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/retention"
)

// TestRetentionDeletesExactlyWhatIsOlder (issue 12): a verification older than the period goes
// with its assessment, alerts and callback; one as old whose callback is still being delivered
// stays until that ends; a newer one stays. --dry-run counts the same without deleting.
func TestRetentionDeletesExactlyWhatIsOlder(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	sanctioned := "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	old, pending, recent := e.CreateOutgoing("ETH", "", "1", sanctioned), e.CreateOutgoing("ETH", "", "1", sanctioned), e.CreateOutgoing("ETH", "", "1", sanctioned)
	for _, v := range []string{old, pending, recent} {
		e.Receiver.Terminal(t, e.Assess(v, ""), 30*time.Second)
	}
	e.Receiver.ScreeningTerminal(t, e.Screen(old), 30*time.Second) // screenings go with their verification too
	require.Eventually(t, func() bool {
		var n int
		e.DB.Get(&n, `SELECT count(*) FROM callbacks WHERE status = 'DELIVERED'`)
		return n == 4
	}, 30*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		var n int
		e.DB.Get(&n, `SELECT count(*) FROM peer_messages WHERE status = 'DELIVERED'`)
		return n == 3
	}, 30*time.Second, 20*time.Millisecond, "each verification reached the counterparty")
	_, err := e.DB.Exec(`UPDATE verifications SET created_at = now() - interval '10 days' WHERE uuid IN ($1, $2)`, old, pending)
	require.NoError(t, err)
	_, err = e.DB.Exec(`UPDATE callbacks SET status = 'PENDING' WHERE request_id = (SELECT request_id FROM kyt_results WHERE verification_uuid = $1)`, pending)
	require.NoError(t, err)

	p, err := retention.NewPurger(e.DB, 5*24*time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	require.NoError(t, err)
	dry, err := p.DryRun(context.Background())
	require.NoError(t, err)
	require.Equal(t, retention.Counts{Verifications: 1, Assessments: 1, Screenings: 1, Alerts: 1, Callbacks: 2, PeerMessages: 1}, dry)
	require.Equal(t, 200, e.Client.Do("GET", "/v1/verifications/"+old, nil, nil).Status, "a dry run deletes nothing")

	got, err := p.Run(context.Background(), 1, time.Millisecond) // one verification a batch
	require.NoError(t, err)
	require.Equal(t, dry, got)
	r := e.Client.Do("GET", "/v1/verifications/"+old, nil, nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "NOT-FOUND-VERIFICATION")
	var left int
	require.NoError(t, e.DB.Get(&left, `SELECT count(*) FROM kyt_results WHERE verification_uuid = $1`, old))
	require.Zero(t, left, "its assessment went with it")
	require.NoError(t, e.DB.Get(&left, `SELECT count(*) FROM screening_results WHERE verification_uuid = $1`, old))
	require.Zero(t, left, "its screening went with it")
	require.NoError(t, e.DB.Get(&left, `SELECT count(*) FROM peer_messages WHERE verification_uuid = $1`, old))
	require.Zero(t, left, "its message to the counterparty went with it")
	for _, v := range []string{pending, recent} {
		require.Equal(t, 200, e.Client.Do("GET", "/v1/verifications/"+v, nil, nil).Status)
	}
	var rows int
	require.NoError(t, e.DB.Get(&rows, `SELECT (SELECT count(*) FROM kyt_results) + (SELECT count(*) FROM kyt_alerts) + (SELECT count(*) FROM callbacks)`))
	require.Equal(t, 6, rows, "two assessments, their two alerts and two callbacks remain")

	// Once its callback is delivered, the kept one goes too.
	_, err = e.DB.Exec(`UPDATE callbacks SET status = 'DELIVERED'`)
	require.NoError(t, err)
	got, err = p.Run(context.Background(), 500, time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, 1, got.Verifications)
	require.Equal(t, 200, e.Client.Do("GET", "/v1/verifications/"+recent, nil, nil).Status)

	// serve with ENCLAVE_RETENTION purges by itself, from its start on.
	aged := e.CreateOutgoing("ETH", "", "1", sanctioned)
	_, err = e.DB.Exec(`UPDATE verifications SET created_at = now() - interval '10 days' WHERE uuid = $1`, aged)
	require.NoError(t, err)
	// (River runs periodic jobs on its leader: the first enclave steps down.)
	require.NoError(t, e.App.Stop(context.Background()))
	e2 := et.Start(t, et.Options{DSN: e.DSN, Config: func(c *config.Config) { c.Retention = 5 * 24 * time.Hour }})
	require.Eventually(t, func() bool { return e2.Client.Do("GET", "/v1/verifications/"+aged, nil, nil).Status == 400 },
		30*time.Second, 50*time.Millisecond)
	require.Contains(t, string(e2.Client.Do("GET", "/metrics", nil, nil).Body), `enclave_purged_total{table="verifications"} 1`)
	require.Equal(t, 200, e2.Client.Do("GET", "/v1/verifications/"+recent, nil, nil).Status)
}
