package api

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// retryAfterSeconds is the Retry-After of every 503: a database restart or fail-over takes
// seconds, and a client that comes back sooner only adds load.
const retryAfterSeconds = "5"

// unavailable reports whether err says the database could not be reached or went away (not
// that it refused a statement): the request may succeed unchanged once it is back, so it is a
// 503 SERVICE-UNAVAILABLE with Retry-After rather than a 500. It is the one place that knows
// the driver's errors (pgx through database/sql): a refused or reset connection, a server
// shutting down, starting up or out of connection slots, a connection closed under a
// statement, a statement or a wait for a pooled connection that ran out of time.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"): // connection exception
			return true
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03": // admin or crash shutdown; cannot connect now
			return true
		case pg.Code == "53300": // too many connections
			return true
		}
		return false // any other SQLSTATE is the statement's fault: a bug, not an outage
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr):
		return true
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone), errors.Is(err, pgconn.ErrConnClosed):
		return true
	case errors.Is(err, io.ErrUnexpectedEOF):
		return true // the server closed the connection mid-answer
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH):
		return true
	case pgconn.Timeout(err), errors.Is(err, context.DeadlineExceeded):
		return true // a statement, or the wait for a pooled connection, ran out of time
	}
	return false
}

// clientGone reports whether the request failed only because its client went away: nobody
// reads the answer, and it is no fault of the enclave's.
func clientGone(ctx context.Context, err error) bool {
	return errors.Is(ctx.Err(), context.Canceled) && (errors.Is(err, context.Canceled) || pgconn.Timeout(err))
}
