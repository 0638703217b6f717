// Package batch merges concurrent calls of one kind into one: a round trip and, for a write,
// one commit, for however many callers arrived together. It batches by load alone, the way
// PostgreSQL groups concurrent commits into one WAL flush: no timer, no added wait. The first
// caller flushes at once; callers that arrive while a flush is running wait for it and are
// flushed together next. Idle, every call is its own batch; busy, batches grow with the load.
package batch

import (
	"context"
	"sync"
	"time"
)

// Group runs Flush over the inputs of concurrent calls to Do.
type Group[In, Out any] struct {
	// Flush does the work of one batch and returns one output per input, in order. It runs
	// once at a time; its context is not any one caller's, so a caller that gives up does not
	// fail the others.
	Flush func(ctx context.Context, in []In) ([]Out, error)
	// Timeout bounds one Flush; default 10s.
	Timeout time.Duration
	// Max is the most inputs in one batch; default 256.
	Max int

	mu       sync.Mutex
	flushing sync.Mutex
	open     *pending[In, Out]
}

type pending[In, Out any] struct {
	in   []In
	out  []Out
	err  error
	done chan struct{}
}

// Do adds in to the open batch and returns its output once the batch is flushed.
func (g *Group[In, Out]) Do(ctx context.Context, in In) (Out, error) {
	g.mu.Lock()
	if g.open == nil || len(g.open.in) >= g.max() {
		g.open = &pending[In, Out]{done: make(chan struct{})}
	}
	b := g.open
	i := len(b.in)
	b.in = append(b.in, in)
	g.mu.Unlock()

	if i == 0 { // the batch's first caller flushes it, once the flush before it is done
		g.flushing.Lock()
		g.mu.Lock()
		if g.open == b {
			g.open = nil // later callers start the next batch
		}
		g.mu.Unlock()
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout())
		b.out, b.err = g.Flush(fctx, b.in)
		cancel()
		g.flushing.Unlock()
		close(b.done)
	}
	var zero Out
	select {
	case <-b.done:
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	if b.err != nil {
		return zero, b.err
	}
	return b.out[i], nil
}

func (g *Group[In, Out]) max() int {
	if g.Max > 0 {
		return g.Max
	}
	return 256
}

func (g *Group[In, Out]) timeout() time.Duration {
	if g.Timeout > 0 {
		return g.Timeout
	}
	return 10 * time.Second
}

// Alone stores a batch with store(in, out), which fills out (one per input) and returns an
// error that fails the whole batch (a transaction the database refused). Then each input is
// stored again by itself, so a bad one fails only its own caller: failed(err) is the output of
// an input that fails alone. A batch of one is not tried twice.
func Alone[In, Out any](in []In, store func(in []In, out []Out) error, failed func(error) Out) []Out {
	out := make([]Out, len(in))
	err := store(in, out)
	if err == nil {
		return out
	}
	if len(in) == 1 {
		out[0] = failed(err)
		return out
	}
	for i := range in {
		if err := store(in[i:i+1], out[i:i+1]); err != nil {
			out[i] = failed(err)
		}
	}
	return out
}
