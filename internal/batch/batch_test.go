package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCallersArrivingDuringAFlushShareTheNext: every caller gets its own output, and callers
// that arrive while a flush runs are flushed together in the next one.
func TestCallersArrivingDuringAFlushShareTheNext(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	g := &Group[int, string]{Flush: func(_ context.Context, in []int) ([]string, error) {
		mu.Lock()
		sizes = append(sizes, len(in))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		out := make([]string, len(in))
		for i, v := range in {
			out[i] = fmt.Sprint(v * 10)
		}
		return out, nil
	}}
	var wg sync.WaitGroup
	got := make([]string, 11)
	wg.Go(func() { got[0], _ = g.Do(context.Background(), 0) })
	<-started
	for i := 1; i <= 10; i++ {
		wg.Go(func() {
			v, err := g.Do(context.Background(), i)
			require.NoError(t, err)
			got[i] = v
		})
	}
	// Let the ten join the open batch before the first flush ends.
	require.Eventually(t, func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.open != nil && len(g.open.in) == 10
	}, 5e9, 1e6)
	close(release)
	wg.Wait()
	require.Equal(t, []int{1, 10}, sizes, "one flush for the first caller, one for the ten who waited")
	for i, v := range got {
		require.Equal(t, fmt.Sprint(i*10), v)
	}
}

func TestAFailedFlushFailsItsCallersOnly(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	g := &Group[int, int]{Flush: func(_ context.Context, in []int) ([]int, error) {
		if in[0] < 0 {
			return nil, boom
		}
		return in, nil
	}}
	_, err := g.Do(context.Background(), -1)
	require.ErrorIs(t, err, boom)
	v, err := g.Do(context.Background(), 7)
	require.NoError(t, err)
	require.Equal(t, 7, v)
}
