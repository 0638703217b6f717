package api

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/config"
)

// MaxPreferWait is the longest Prefer: wait a request may ask for (DESIGN.md §7).
const MaxPreferWait = 30

// preferWait reads the wait preference of RFC 7240 ("Prefer: wait=10", possibly among other
// preferences, which are ignored): 0 when none is asked for.
func preferWait(c *gin.Context) (time.Duration, error) {
	for _, h := range c.Request.Header.Values("Prefer") {
		for _, pref := range strings.Split(h, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(strings.SplitN(pref, ";", 2)[0]), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(value), `"`))
			if err != nil || n < 1 || n > MaxPreferWait {
				return 0, apperr.Bad("Prefer: wait wants whole seconds from 1 to %d, got %q", MaxPreferWait, value)
			}
			return time.Duration(n) * time.Second, nil
		}
	}
	return 0, nil
}

// assessor is what the two risk assessments (KYT and address screening) answer the API with.
type assessor[R, D any] interface {
	Accept(ctx context.Context, r R) (string, error)
	Terminal(ctx context.Context, requestID string) (bool, error)
	Find(ctx context.Context, requestID string) (D, error)
}

// preferReserve is how long before the client's wait runs out the enclave stops waiting: a
// tenth of it, at most half a second — time to read the assessment and write the answer, so
// that it arrives within the wait.
func preferReserve(wait time.Duration) time.Duration { return min(wait/10, 500*time.Millisecond) }

// handleAssess is POST /v1/risk-assessment/<kind>: decode the body into R, attach the
// Idempotency-Key and Prefer: wait, accept, and answer (see accepted). The wait counts from
// the request's arrival, and a waiting request may write for its wait on top of writeTimeout
// (the server's, 0: the default), so a long wait under load is answered, never cut off.
func handleAssess[R any, PR interface {
	*R
	Key() *assessment.Keyed
}, D any](log *slog.Logger, svc assessor[R, D], w *assessment.Waiter, writeTimeout time.Duration) gin.HandlerFunc {
	writeTimeout = cmp.Or(writeTimeout, config.DefaultHTTPWriteTimeout)
	find := func(ctx context.Context, id string) (any, error) {
		d, err := svc.Find(ctx, id)
		if err != nil {
			return nil, err
		}
		return whole(id, d)
	}
	return func(c *gin.Context) {
		arrived := time.Now()
		wait, err := preferWait(c)
		if err != nil {
			fail(c, log, err)
			return
		}
		var r R
		body, err := decode(c, &r)
		if err != nil {
			fail(c, log, err)
			return
		}
		if wait > 0 {
			waitDeadlines(c, arrived.Add(wait+writeTimeout))
		}
		k := PR(&r).Key()
		k.IdempotencyKey, k.Body, k.Notify = c.GetHeader(headerIdempotencyKey), body, wait > 0
		id, err := svc.Accept(c.Request.Context(), r)
		if err != nil {
			fail(c, log, err)
			return
		}
		accepted(c, w, id, wait, arrived.Add(wait-preferReserve(wait)), writeTimeout, svc.Terminal, find)
	}
}

// whole is the whole assessment of Prefer: wait: {"requestId", ...the callback's data}.
func whole(id string, data any) (json.RawMessage, error) {
	b, err := json.Marshal(data)
	if err != nil || len(b) < 2 || b[0] != '{' {
		return nil, fmt.Errorf("answer %s whole: %v", id, err)
	}
	head, _ := json.Marshal(struct {
		RequestID string `json:"requestId"`
	}{id})
	if string(b) == "{}" {
		return head, nil
	}
	return append(append(head[:len(head)-1], ','), b[1:]...), nil
}

// accepted answers an accepted assessment. Asked to wait, it waits until until (holding no
// database connection) for the assessment to end, whichever replica works it, and answers it
// whole — its requestId and the data of its callback — with Preference-Applied; otherwise, or
// when the wait runs out, the plain {"requestId"}. Either answer has writeTimeout to be written
// from when it is ready, however long the accept and the wait took: an accepted assessment's
// requestId is never lost to a deadline.
func accepted(c *gin.Context, w *assessment.Waiter, id string, wait time.Duration, until time.Time, writeTimeout time.Duration,
	terminal func(context.Context, string) (bool, error), find func(context.Context, string) (any, error)) {
	type plain struct {
		RequestID string `json:"requestId"`
	}
	left := time.Until(until)
	if wait <= 0 || left <= 0 {
		writeWithin(c, writeTimeout, plain{id})
		return
	}
	ctx := c.Request.Context()
	done, err := w.Wait(ctx, id, left, func(ctx context.Context) (bool, error) { return terminal(ctx, id) })
	if err == nil && done {
		var whole any
		if whole, err = find(ctx, id); err == nil {
			c.Header("Preference-Applied", "wait="+strconv.Itoa(int(wait/time.Second)))
			writeWithin(c, writeTimeout, whole)
			return
		}
	}
	// Accepted is accepted: whatever went wrong while waiting, the requestId is the answer, and
	// the callback follows as always.
	writeWithin(c, writeTimeout, plain{id})
}
