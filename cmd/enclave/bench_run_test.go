package main

// The bench's own tests live here, beside the command that runs it, rather than in
// internal/bench: one test binary of the whole enclave fewer to link at every go test (6-9 CPU-s).

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/bench"
	"github.com/travelrule/enclave/internal/dbtest"
)

// TestSmallRunLosesNothing runs the bench briefly: every accepted assessment must come back
// as a verified callback, with the minimum number of Chainalysis calls. (Speed is reported by
// `enclave bench`, never asserted.)
func TestSmallRunLosesNothing(t *testing.T) {
	t.Parallel()
	res, err := bench.Run(context.Background(), bench.Options{DSN: dbtest.URL(t), Rate: 40, Duration: time.Second, Calibration: -1, // no calibration: figures are not the point here
		Concurrency: 8, Workers: 10, PipelineConnections: 4, TransferShare: 0.5, Drain: time.Minute})
	require.NoError(t, err)
	require.Equal(t, 40, res.Accepted)
	require.Zero(t, res.Lost)
	require.Equal(t, 40, res.Processed)
	require.Equal(t, 20, res.Attempts)
	require.Equal(t, 20, res.Transfers)
	require.Equal(t, 2.0, res.CallsPerAttempt)
	require.Equal(t, 3.0, res.CallsPerTransfer)
	require.Zero(t, res.SignatureFailures)
	var out strings.Builder
	res.Print(&out, bench.Options{Rate: 40, Duration: time.Second, Concurrency: 8, Workers: 10, PipelineConnections: 4, TransferShare: 0.5})
	require.Contains(t, out.String(), "lost:        0")
}

// TestExchangeLosesNothing runs the exchange bench briefly: two enclaves, each on its own
// database, every verification created comes back VERIFIED as one signed VERIFICATION_RESULT.
// (Latency is reported by `enclave bench --exchange`, never asserted.)
func TestExchangeLosesNothing(t *testing.T) {
	t.Parallel()
	o := bench.ExchangeOptions{DSN: dbtest.URL(t), CounterpartyDSN: dbtest.URL(t), Rate: 20, Duration: time.Second, Calibration: -1,
		Concurrency: 8, PeerWorkers: 10, CallbackWorkers: 10, PipelineConnections: 4, PeerLatency: 5 * time.Millisecond, VASPAPILatency: 5 * time.Millisecond,
		Drain: time.Minute}
	res, err := bench.RunExchange(context.Background(), o)
	require.NoError(t, err)
	require.Equal(t, 20, res.Offered)
	require.Equal(t, 20, res.Accepted)
	require.Zero(t, res.Lost, "lost: %v", res.LostIDs)
	require.Equal(t, 20, res.Completed)
	require.Equal(t, 20, res.Verified)
	require.Zero(t, res.Duplicates)
	require.Zero(t, res.SignatureFailures)
	var out strings.Builder
	res.Print(&out, o)
	require.Contains(t, out.String(), "floor 15.0ms")
	require.Contains(t, out.String(), "lost:        0")
}
