package api

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
)

// TestUnavailableKnowsTheDriversOutages: the errors the driver gives while PostgreSQL is gone,
// wrapped as the stores wrap them, are outages; a statement PostgreSQL refuses is not.
func TestUnavailableKnowsTheDriversOutages(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("find verification x: %w", err) }
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for name, err := range map[string]error{
		"Refused":           refused,
		"Reset":             os.NewSyscallError("read", syscall.ECONNRESET),
		"AdminShutdown":     &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"},
		"CrashShutdown":     &pgconn.PgError{Code: "57P02"},
		"StartingUp":        &pgconn.PgError{Code: "57P03", Message: "the database system is starting up"},
		"ConnectionFailure": &pgconn.PgError{Code: "08006"},
		"TooManyClients":    &pgconn.PgError{Code: "53300"},
		"BadConn":           driver.ErrBadConn,
		"ConnClosed":        pgconn.ErrConnClosed,
		"UnexpectedEOF":     io.ErrUnexpectedEOF,
		"PoolWait":          context.DeadlineExceeded,
	} {
		require.True(t, unavailable(wrap(err)), name)
	}
	for name, err := range map[string]error{
		"UniqueViolation": &pgconn.PgError{Code: "23505"},
		"SyntaxError":     &pgconn.PgError{Code: "42601"},
		"Plain":           errors.New("marshal: oops"),
		"Nil":             nil,
	} {
		require.False(t, unavailable(wrap(err)), name)
	}

	ctx, cancel := context.WithCancel(context.Background())
	require.False(t, clientGone(ctx, wrap(context.Canceled)), "the client is still there")
	cancel()
	require.True(t, clientGone(ctx, wrap(context.Canceled)))
	require.False(t, clientGone(ctx, wrap(errors.New("marshal: oops"))))
}
