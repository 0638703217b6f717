package retry_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/retry"
)

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	b := retry.Backoff{Base: time.Second, Cap: time.Minute}
	for n, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		for range 50 {
			d := b.Delay(n)
			require.GreaterOrEqual(t, d, want*8/10, "try %d", n)
			require.LessOrEqual(t, d, want*12/10, "try %d", n)
		}
	}
	require.Zero(t, retry.Jitter(0, 0.5))
}
