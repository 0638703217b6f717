// Package logthrottle keeps a failure that repeats many times a second from flooding the log.
// River's producer logs "Error fetching jobs" at every fetch it tries, fifty times a second
// per queue while the database is down; an operator needs to know that it is down, how long
// it has been, and when it is back — not ten thousand copies of the same line.
package logthrottle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Handler passes a record on unless a record with the same level and message was passed on
// within the window; then it only counts it. The next one passed on after the window carries
// "suppressed": how many were left out in between. Records below MinLevel always pass.
type Handler struct {
	inner    slog.Handler
	window   time.Duration
	minLevel slog.Level
	state    *state
}

type state struct {
	mu   sync.Mutex
	seen map[key]*entry
}

type key struct {
	level slog.Level
	msg   string
}

type entry struct {
	last       time.Time
	suppressed int
}

// New wraps inner: records at minLevel or above with the same level and message pass at most
// once per window.
func New(inner slog.Handler, window time.Duration, minLevel slog.Level) *Handler {
	return &Handler{inner: inner, window: window, minLevel: minLevel, state: &state{seen: map[key]*entry{}}}
}

// Enabled is the inner handler's.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// Handle passes r on, or counts it as suppressed.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.minLevel {
		return h.inner.Handle(ctx, r)
	}
	k := key{r.Level, r.Message}
	h.state.mu.Lock()
	e := h.state.seen[k]
	if e == nil {
		e = &entry{}
		h.state.seen[k] = e
		if len(h.state.seen) > 1000 { // messages are constants; this only bounds a surprise
			clear(h.state.seen)
			h.state.seen[k] = e
		}
	}
	if !e.last.IsZero() && r.Time.Sub(e.last) < h.window {
		e.suppressed++
		h.state.mu.Unlock()
		return nil
	}
	suppressed := e.suppressed
	e.last, e.suppressed = r.Time, 0
	h.state.mu.Unlock()
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", suppressed), slog.String("suppressedOver", h.window.String()))
	}
	return h.inner.Handle(ctx, r)
}

// WithAttrs keeps the throttle shared with h.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{inner: h.inner.WithAttrs(attrs), window: h.window, minLevel: h.minLevel, state: h.state}
}

// WithGroup keeps the throttle shared with h.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), window: h.window, minLevel: h.minLevel, state: h.state}
}
