package api

import (
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// bodyGrace is how long a request body may take before the minimum rate applies: enough for
// a client to start sending, too little for a trickle to matter.
const bodyGrace = 5 * time.Second

// pacedBody holds a request body to a minimum rate: after bodyGrace, the connection's read
// deadline moves forward with each byte that arrives (1 s per rate bytes), so a body trickled
// a byte at a time is cut off within seconds while a large one from a slow client still
// arrives. Once the body is whole the deadline is lifted: the server then only watches for the
// client going away, and a Prefer: wait must not be cut short by it.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	rate  int64 // bytes per second
	read  int64
	eof   bool
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	switch {
	case err == io.EOF:
		b.eof = true
		b.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // not every writer has a connection (tests)
	case err == nil && n > 0:
		b.rc.SetReadDeadline(b.start.Add(bodyGrace + time.Duration(b.read)*time.Second/time.Duration(b.rate))) //nolint:errcheck
	}
	return n, err
}

// pace puts c's request body, if it has one, under the minimum rate.
func pace(c *gin.Context, rate int) {
	if c.Request.ContentLength == 0 || c.Request.Body == nil || c.Request.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(c.Writer)
	now := time.Now()
	rc.SetReadDeadline(now.Add(bodyGrace)) //nolint:errcheck
	c.Request.Body = &pacedBody{ReadCloser: c.Request.Body, rc: rc, start: now, rate: int64(rate)}
}

// paceOf is the minimum rate c's body was held to, for the message that says it was too slow.
func paceOf(c *gin.Context) int64 {
	if b, ok := c.Request.Body.(*pacedBody); ok {
		return b.rate
	}
	return 0
}

// closeUnread makes an answer given before the request's body was read the connection's
// last: Connection: close, and a read deadline already past, so that the server neither
// reads the rest of the body (a trickle would hold the connection until the read timeout)
// nor waits for it before closing.
func closeUnread(c *gin.Context) {
	b, ok := c.Request.Body.(*pacedBody)
	if !ok || b.eof {
		return
	}
	c.Header("Connection", "close")
	b.rc.SetReadDeadline(time.Now()) //nolint:errcheck
}

// waitDeadlines lets a request that waits (Prefer: wait) run until until: the server's write
// deadline, set when the request arrived, would otherwise cut the connection before a long
// wait is answered; and no read deadline is left to cancel the request while it waits.
func waitDeadlines(c *gin.Context, until time.Time) {
	rc := http.NewResponseController(c.Writer)
	rc.SetWriteDeadline(until)      //nolint:errcheck // not every writer has a connection (tests)
	rc.SetReadDeadline(time.Time{}) //nolint:errcheck
}

// writeWithin writes v as c's JSON answer with d to write it, however long the request took
// to get there: an answer that must not be lost (an accepted assessment's requestId) is not
// cut off by a write deadline that ran while the database was busy.
func writeWithin(c *gin.Context, d time.Duration, v any) {
	http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(d)) //nolint:errcheck
	c.JSON(http.StatusOK, v)
}
