package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/webhook"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

const (
	headerRequestID = "X-Request-Id"
	headerVaspID    = "X-Vasp-Id"
	// headerIdempotencyKey makes a retried POST that creates something answer the first answer.
	headerIdempotencyKey = "Idempotency-Key"
	ctxRequestID         = "requestId"
	ctxPeer              = "peerVaspId"
	ctxBody              = "peerBody"
	ctxError             = "errorBody"
	ctxDenied            = "deniedBecause"
	// ctxGone marks a request whose client went away before its answer: logged at info with
	// nginx's 499, never as a 500.
	ctxGone = "clientGone"
)

// withRequestID echoes a sane X-Request-Id or makes one, so a caller can quote it.
func withRequestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader(headerRequestID)
		if id == "" || len(id) > 128 || strings.ContainsFunc(id, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
			id = uuid.NewString()
		}
		c.Set(ctxRequestID, id)
		c.Header(headerRequestID, id)
		c.Next()
	}
}

func requestID(c *gin.Context) string { return c.GetString(ctxRequestID) }

// withLogging logs one line a request at a level chosen from its status. It never logs bodies,
// headers or query strings, which may carry secrets or personal data.
func withLogging(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		st := c.Writer.Status()
		level := slog.LevelInfo
		switch {
		case c.GetBool(ctxGone):
			st = 499
		case st >= 500:
			level = slog.LevelError
		case st >= 400:
			level = slog.LevelWarn
		}
		route := c.FullPath()
		if route == "" {
			route = "(unmatched)"
		}
		attrs := []slog.Attr{slog.String("requestId", requestID(c)), slog.String("method", c.Request.Method),
			slog.String("route", route), slog.Int("status", st),
			slog.String("latency", time.Since(start).Round(time.Microsecond).String())}
		if e, ok := c.Get(ctxError); ok && st < 500 { // a 500's detail is in its own line
			attrs = append(attrs, slog.String("code", e.(errorBody).Code), slog.String("message", e.(errorBody).Message))
		}
		if why := c.GetString(ctxDenied); why != "" {
			attrs = append(attrs, slog.String("deniedBecause", why))
		}
		log.LogAttrs(c.Request.Context(), level, "request", attrs...)
	}
}

// withHeaders marks every answer nosniff (a JSON error is never rendered as HTML), and every
// answer of /v1 and /peer/v1 no-store: they carry personal data (IVMS101) that no cache or
// proxy on the way may keep.
func withHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Header("X-Content-Type-Options", "nosniff")
		if p := c.Request.URL.Path; p == "/v1" || p == "/peer/v1" || strings.HasPrefix(p, "/v1/") || strings.HasPrefix(p, "/peer/v1/") {
			c.Header("Cache-Control", "no-store")
		}
		c.Next()
	}
}

// withRecovery turns a panic into a logged INTERNAL-ERROR; a panic is a bug, never an answer.
func withRecovery(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic", "requestId", requestID(c), "route", c.FullPath(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				fail(c, log, fmt.Errorf("panic: %v", p))
			}
		}()
		c.Next()
	}
}

// withBodyLimit caps the body; reading past the cap fails with PAYLOAD-TOO-LARGE. The body
// must arrive at rate bytes a second at least (after a short grace; 0: the default), and a
// request answered before its body was read is its connection's last (see closeUnread).
func withBodyLimit(n int64, rate int) gin.HandlerFunc {
	rate = cmp.Or(rate, config.DefaultHTTPMinBodyRate)
	return func(c *gin.Context) {
		if c.Request.ContentLength > 0 || c.Request.ContentLength == -1 {
			c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
			pace(c, rate)
		}
		if c.Request.ContentLength > n {
			abort(c, http.StatusRequestEntityTooLarge, errorBody{
				Code: apperr.PayloadTooLarge, Message: fmt.Sprintf("request body is larger than %d bytes", n)})
			return
		}
		c.Next()
	}
}

// requireAPIKey admits requests carrying "Authorization: Bearer <key>" for one of keys. Keys
// are compared as SHA-256 digests in constant time, so neither content nor length leaks.
func requireAPIKey(keys []string) gin.HandlerFunc {
	digests := make([][32]byte, len(keys))
	for i, k := range keys {
		digests[i] = sha256.Sum256([]byte(k))
	}
	return func(c *gin.Context) {
		got, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		d := sha256.Sum256([]byte(strings.TrimSpace(got)))
		match := 0
		for i := range digests {
			match |= subtle.ConstantTimeCompare(d[:], digests[i][:])
		}
		switch {
		case !ok || strings.TrimSpace(got) == "":
			deny(c, "no Authorization: Bearer <key> header")
			return
		case match != 1:
			deny(c, "the API key is not one of ENCLAVE_API_KEYS")
			return
		}
		c.Next()
	}
}

// requirePeerSignature admits requests from a counterparty enclave listed in the peers file:
// X-Vasp-Id names it, and the Standard Webhooks signature over the body must verify with its
// secret and be at most five minutes old. The verified body is kept for the handler. A message
// the handler took (2xx) is a sighting of the counterparty, given to seen (its lastSeenAt in
// GET /v1/vasps); seen may be nil.
func requirePeerSignature(log *slog.Logger, peers func(string) (config.Peer, bool), seen func(context.Context, string) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		sender := c.GetHeader(headerVaspID)
		peer, known := peers(sender)
		if !known { // before reading a byte of the body
			deny(c, "X-Vasp-Id names no peer of ENCLAVE_PEERS_FILE")
			return
		}
		body, err := readBody(c)
		if err != nil {
			fail(c, log, err)
			return
		}
		if err := webhook.Verify(peer.Secret, c.Request.Header, body); err != nil {
			deny(c, "peer "+peer.VaspID+": "+err.Error())
			return
		}
		c.Set(ctxPeer, peer.VaspID)
		c.Set(ctxBody, body)
		c.Next()
		if st := c.Writer.Status(); seen != nil && st >= 200 && st < 300 {
			if err := seen(c.Request.Context(), peer.VaspID); err != nil {
				log.WarnContext(c.Request.Context(), "peer: record a sighting", "counterparty", peer.VaspID, "err", err) // answered all the same
			}
		}
	}
}
