package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/strictjson"
)

// handleAnswerOf answers a POST whose JSON body (of type T) one call takes, with what the call
// answers (R): the synchronous checks, and, through handleBody, every POST answered
// {"result": true}.
func handleAnswerOf[T, R any](log *slog.Logger, do func(context.Context, T) (R, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var m T
		if _, err := decode(c, &m); err != nil {
			fail(c, log, err)
			return
		}
		out, err := do(c.Request.Context(), m)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, out)
	}
}

// handlePeerAnswerOf answers a peer route: the body, already verified with the sender's
// signature, decoded as T and given to do with the sender's VASP id; what do answers (R) is the
// answer.
func handlePeerAnswerOf[T, R any](log *slog.Logger, do func(ctx context.Context, sender string, m T, body []byte) (R, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := c.MustGet(ctxBody).([]byte)
		var m T
		if err := decodePeer(body, &m); err != nil {
			fail(c, log, err)
			return
		}
		out, err := do(c.Request.Context(), c.GetString(ctxPeer), m, body)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, out)
	}
}

// decodePeer decodes a signed peer body into v as decodeJSON does, and strictly: a key twice
// in one object, two keys differing only in case, or a key differing only in case from a
// field of v is BAD-REQUEST naming it (internal/strictjson), so the signed bytes have one
// reading. Every peer route decodes through it.
func decodePeer(body []byte, v any) error {
	if err := decodeJSON(body, v); err != nil {
		return err
	}
	return strictjson.Check(body, v)
}

// peerCheck adapts a synchronous check answered to a peer, which does not need the raw body.
func peerCheck[T, R any](do func(ctx context.Context, sender string, m T) (R, error)) func(context.Context, string, T, []byte) (R, error) {
	return func(ctx context.Context, sender string, m T, _ []byte) (R, error) { return do(ctx, sender, m) }
}
