package assessment

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

type acceptArgs struct {
	N int `json:"n"`
}

func (acceptArgs) Kind() string { return "accept_test" }

// newAccepts is an Accepts over a table of its own, whose CHECK refuses a negative n: the bad
// row a request can bring that validation did not catch.
func newAccepts(t *testing.T) (*Accepts, *sqlx.DB) {
	t.Helper()
	db := dbtest.New(t)
	_, err := db.Exec(`CREATE TABLE accept_test (request_id uuid PRIMARY KEY, n int NOT NULL CHECK (n >= 0),
		request_sha256 bytea, created_at timestamptz NOT NULL DEFAULT now(), notify boolean NOT NULL DEFAULT false,
		status text NOT NULL DEFAULT 'PENDING')`)
	require.NoError(t, err)
	rc, err := river.NewClient[*sql.Tx](riverdatabasesql.New(db.DB), &river.Config{})
	require.NoError(t, err)
	a := NewAccepts(db, "accept_test", "request_id uuid, n int, request_sha256 bytea")
	a.Attach(rc)
	return a, db
}

type testRow struct {
	RequestID string  `json:"request_id"`
	N         int     `json:"n"`
	Sum       *string `json:"request_sha256"`
}

func row(id string, n int) accept {
	return accept{id: id, job: acceptArgs{N: n}, row: testRow{RequestID: id, N: n, Sum: Hex([]byte{byte(n)})}}
}

func jobs(t *testing.T, db *sqlx.DB) int {
	var n int
	require.NoError(t, db.Get(&n, `SELECT count(*) FROM river_job WHERE kind = 'accept_test'`))
	return n
}

// TestABadRowFailsOnlyItsOwnRequest: a batch holding a row the database refuses is stored
// again one request at a time; the others are created with their jobs, the bad one gets the
// database's reason, and a second request for an id already in the batch is not created twice.
func TestABadRowFailsOnlyItsOwnRequest(t *testing.T) {
	t.Parallel()
	a, db := newAccepts(t)
	first, second := uuid.NewString(), uuid.NewString()
	out, err := a.flush(context.Background(), []accept{row(first, 1), row(uuid.NewString(), -1), row(second, 2), row(first, 1)})
	require.NoError(t, err)
	require.True(t, out[0].created)
	require.NoError(t, out[0].err)
	require.ErrorContains(t, out[1].err, "accept_test_n_check")
	require.False(t, out[1].created)
	require.True(t, out[2].created)
	require.NoError(t, out[2].err)
	require.False(t, out[3].created, "the same id again: the first row answers it")
	require.NoError(t, out[3].err)
	var sums []string
	require.NoError(t, db.Select(&sums, `SELECT encode(request_sha256, 'hex') FROM accept_test ORDER BY n`))
	require.Equal(t, []string{"01", "02"}, sums, "rows stored as given, the hash as bytes")
	require.Equal(t, 2, jobs(t, db), "one job for each row created, none for the refused one")
}

// TestConcurrentAcceptsAreEachStoredWithTheirJob: requests arriving together, some sharing
// transactions, are each stored once with exactly one job, and each told it was created.
func TestConcurrentAcceptsAreEachStoredWithTheirJob(t *testing.T) {
	t.Parallel()
	a, db := newAccepts(t)
	const n = 40
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r := row(uuid.NewString(), i)
			created, err := a.Store(context.Background(), r.id, nil, false, r.row, r.job)
			if err == nil && !created {
				err = fmt.Errorf("request %d not created", i)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	var rows int
	require.NoError(t, db.Get(&rows, `SELECT count(*) FROM accept_test`))
	require.Equal(t, n, rows)
	require.Equal(t, n, jobs(t, db))
}
