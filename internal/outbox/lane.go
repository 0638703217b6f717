package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
)

// Lane delivers the PENDING rows of one outbox table whose next_attempt_at has come: the row
// is the work, with no job beside it. It claims due rows a batch at a time with FOR UPDATE
// SKIP LOCKED and moves each one's next_attempt_at a lease ahead in the same statement (and
// sets in_flight), so two replicas never claim one row, and a row whose process died
// mid-delivery is due again when its lease ends. Deliver records each attempt's outcome on the
// row, in_flight cleared: DELIVERED or FAILED (and next_attempt_at NULL), or still PENDING
// with the next attempt's time. A delivery runs on a
// lane of its own, Workers at a time: a slow receiver never holds back the work that enqueues.
//
// The lane looks for due rows every Poll, and at once when Wake is called (after a
// transaction that enqueued commits) or a delivery ends while every worker was busy.
type Lane[T any] struct {
	// DB is the pool claims run on.
	DB *sqlx.DB
	// Table is the outbox table; Columns what a claimed row is read as, into T.
	Table, Columns string
	// Workers bounds the deliveries running at once.
	Workers int
	// Lease is how long a claimed row is left to its delivery before another claim may take
	// it: longer than a delivery can take, which Deliver's context is bounded by.
	Lease time.Duration
	// Poll is how often due rows are looked for when nothing wakes the lane.
	Poll time.Duration
	// Deliver makes one attempt at row and records it.
	Deliver func(ctx context.Context, row T)
	Log     *slog.Logger
	// Running, when set, counts the deliveries this process is making (/metrics).
	Running prometheus.Gauge

	wake     chan struct{}
	stop     context.CancelFunc // ends claiming
	cancel   context.CancelFunc // ends the deliveries running
	done     chan struct{}
	mu       sync.Mutex
	failedAt time.Time // last claim failure logged
}

// maxClaim bounds one claim: a batch large enough that a burst costs few round trips, small
// enough that one statement stays short.
const maxClaim = 200

// Start runs the lane until Stop or StopAndCancel.
func (l *Lane[T]) Start() {
	l.wake = make(chan struct{}, 1)
	l.done = make(chan struct{})
	claiming, stop := context.WithCancel(context.Background())
	delivering, cancel := context.WithCancel(context.Background())
	l.stop, l.cancel = stop, cancel
	go func() {
		defer close(l.done)
		l.run(claiming, delivering)
	}()
}

// Wake makes the lane look for due rows now rather than at its next poll.
func (l *Lane[T]) Wake() {
	if l.wake == nil {
		return
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Stop stops claiming and waits for the deliveries running to end, until ctx is done. Rows it
// did not wait for are delivered again after their lease by whichever process claims them.
func (l *Lane[T]) Stop(ctx context.Context) error {
	if l.done == nil {
		return nil
	}
	l.stop()
	select {
	case <-l.done:
		l.cancel()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s deliveries still running: %w", l.Table, ctx.Err())
	}
}

// StopAndCancel stops claiming, cancels the deliveries running and waits for them until ctx
// is done.
func (l *Lane[T]) StopAndCancel(ctx context.Context) error {
	if l.done == nil {
		return nil
	}
	l.stop()
	l.cancel()
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Lane[T]) run(claiming, delivering context.Context) {
	slots := make(chan struct{}, max(l.Workers, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(l.Poll)
	defer tick.Stop()
	for {
		want := min(cap(slots)-len(slots), maxClaim)
		got := 0
		if want > 0 {
			rows, err := l.claim(claiming, want)
			if err != nil && claiming.Err() == nil {
				l.logFailure(err)
			}
			got = len(rows)
			for _, r := range rows {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(delivering, l.Lease)
					defer cancel()
					if l.Running != nil {
						l.Running.Inc()
						defer l.Running.Dec()
					}
					l.Deliver(ctx, r)
					<-slots
					if len(slots) == cap(slots)-1 {
						l.Wake() // a worker is free again: there may be rows waiting for one
					}
				}()
			}
		}
		if got > 0 && got == want {
			continue // a full batch: more may be due
		}
		select {
		case <-claiming.Done():
			return
		case <-tick.C:
		case <-l.wake:
		}
	}
}

// claim takes up to n due rows, moving each one's next attempt a lease ahead.
func (l *Lane[T]) claim(ctx context.Context, n int) ([]T, error) {
	var rows []T
	err := l.DB.SelectContext(ctx, &rows, `UPDATE `+l.Table+` SET next_attempt_at = now() + $2 * interval '1 millisecond', in_flight = true
		WHERE id = ANY(ARRAY(SELECT id FROM `+l.Table+` WHERE status = 'PENDING' AND next_attempt_at <= now()
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED))
		RETURNING `+l.Columns, n, l.Lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("claim due %s: %w", l.Table, err)
	}
	return rows, nil
}

// logFailure logs a failed claim at most once every 30 s: while the database is down the lane
// fails at every poll.
func (l *Lane[T]) logFailure(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.failedAt) < 30*time.Second {
		return
	}
	l.failedAt = time.Now()
	if l.Log != nil {
		l.Log.Warn("outbox: claiming due rows failed; retrying at every poll", "table", l.Table, "err", err.Error())
	}
}
