package assessment

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
)

// channel is the PostgreSQL notification channel of terminal transitions.
const channel = "enclave_terminal"

// Notify tells every enclave process waiting on one of requestIDs (Prefer: wait) that it is
// terminal, when tx commits. Only assessments accepted with Prefer: wait notify: a notification takes a
// cluster-wide lock at commit, which every terminal transition would otherwise pay.
func Notify(ctx context.Context, tx *sqlx.Tx, requestIDs ...string) error {
	switch len(requestIDs) {
	case 0:
		return nil
	case 1:
		_, err := tx.ExecContext(ctx, `SELECT pg_notify('`+channel+`', $1)`, requestIDs[0])
		return err
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify('`+channel+`', id) FROM unnest($1::text[]) AS id`, requestIDs)
	return err
}

// Waiter waits for assessments to become terminal, whichever replica runs their jobs. One
// LISTEN connection per process, opened while anyone waits and closed when nobody has for a
// while, hears every terminal transition that notifies; a waiting request holds no database
// connection. Should the listener be down, each waiter checks the database itself, at most
// every second or so — never in a tight loop.
type Waiter struct {
	connect func(ctx context.Context) (*pgx.Conn, error)
	log     *slog.Logger
	idle    time.Duration

	mu        sync.Mutex
	waiting   map[string]map[chan struct{}]struct{}
	running   bool
	listening chan struct{} // closed once the current listener has LISTENed
	lastUsed  time.Time
	closed    bool
}

// Close stops the listener for good; waiters then check the database themselves.
func (w *Waiter) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// NewWaiter returns a Waiter that listens on a connection made by connect.
func NewWaiter(connect func(ctx context.Context) (*pgx.Conn, error), log *slog.Logger) *Waiter {
	return &Waiter{connect: connect, log: log, idle: 30 * time.Second, waiting: map[string]map[chan struct{}]struct{}{}}
}

// Wait returns once done reports true (nil error) or d has passed (ok false). done reads the
// assessment's state: it is asked once the listener is ready, again on each notification for
// requestID, and every second or two in case a notification was missed.
func (w *Waiter) Wait(ctx context.Context, requestID string, d time.Duration, done func(context.Context) (bool, error)) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	ch := make(chan struct{}, 1)
	ready := w.subscribe(requestID, ch)
	defer w.unsubscribe(requestID, ch)
	select { // the listener first, so no transition after the first check goes unheard
	case <-ready:
	case <-time.After(time.Second):
	case <-ctx.Done():
		return false, nil
	}
	fallback := 500 * time.Millisecond
	for {
		ok, err := done(ctx)
		if err != nil || ok {
			if ctx.Err() != nil {
				return false, nil
			}
			return ok, err
		}
		t := time.NewTimer(fallback)
		select {
		case <-ch:
		case <-t.C:
			fallback = min(2*fallback, 2*time.Second)
		case <-ctx.Done():
			t.Stop()
			return false, nil
		}
		t.Stop()
	}
}

func (w *Waiter) subscribe(id string, ch chan struct{}) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting[id] == nil {
		w.waiting[id] = map[chan struct{}]struct{}{}
	}
	w.waiting[id][ch] = struct{}{}
	w.lastUsed = time.Now()
	if w.closed {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	if !w.running {
		w.running = true
		w.listening = make(chan struct{})
		go w.listen(w.listening)
	}
	return w.listening
}

func (w *Waiter) unsubscribe(id string, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.waiting[id], ch)
	if len(w.waiting[id]) == 0 {
		delete(w.waiting, id)
	}
	w.lastUsed = time.Now()
}

// listen holds the LISTEN connection while anyone waits, reconnecting after a failure, and
// ends once nobody has waited for w.idle.
func (w *Waiter) listen(ready chan struct{}) {
	signalled := false
	for attempt := 0; ; attempt++ {
		if w.stopIfIdle() {
			return
		}
		ctx := context.Background()
		conn, err := w.connect(ctx)
		if err == nil {
			if _, err = conn.Exec(ctx, "LISTEN "+channel); err != nil {
				conn.Close(ctx)
			}
		}
		if err != nil {
			// Waiters check the database themselves meanwhile.
			w.log.Warn("Prefer: wait cannot listen for terminal states; waiters poll the database every second or two", "err", err.Error())
			if !signalled {
				close(ready)
				signalled = true
			}
			time.Sleep(min(time.Duration(attempt+1)*time.Second, 10*time.Second))
			continue
		}
		attempt = 0
		if !signalled {
			close(ready)
			signalled = true
		}
		for {
			wctx, cancel := context.WithTimeout(ctx, time.Second)
			n, err := conn.WaitForNotification(wctx)
			cancel()
			if err == nil {
				w.wake(n.Payload)
				continue
			}
			if conn.IsClosed() {
				break
			}
			if w.stopIfIdle() {
				conn.Close(ctx)
				return
			}
		}
	}
}

func (w *Waiter) wake(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.waiting[id] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// stopIfIdle ends the listener when nobody has waited for w.idle.
func (w *Waiter) stopIfIdle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(w.waiting) == 0 && time.Since(w.lastUsed) > w.idle {
		w.running = false
		return true
	}
	return false
}
