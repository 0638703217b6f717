package schema_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"testing"

	_ "github.com/lib/pq"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// emptyDB returns a database with no tables at all: a migrated one with everything dropped.
func emptyDB(t *testing.T) *sql.DB {
	db := dbtest.New(t).DB
	_, err := db.Exec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`)
	require.NoError(t, err)
	return db
}

func TestCheckRefusesUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	db := emptyDB(t)
	err := schema.Check(context.Background(), db)
	require.ErrorIs(t, err, schema.ErrNotMigrated)
	require.Contains(t, err.Error(), "enclave migrate")
}

func TestMigrateTwiceConcurrently(t *testing.T) {
	t.Parallel()
	db := emptyDB(t)
	ctx := context.Background()

	var wg sync.WaitGroup
	results := make([]schema.Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = schema.Migrate(ctx, db)
		}()
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	// Exactly one of the two applied the migrations; the other found nothing to do.
	applied := len(results[0].Enclave) + len(results[1].Enclave)
	require.Positive(t, applied)
	require.True(t, len(results[0].Enclave) == 0 || len(results[1].Enclave) == 0, "both processes applied migrations: %+v", results)
	require.NoError(t, schema.Check(ctx, db))

	again, err := schema.Migrate(ctx, db)
	require.NoError(t, err)
	require.Empty(t, again.Enclave)
	require.Empty(t, again.River)
}

func TestCheckNoticesMissingMigration(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t).DB
	ctx := context.Background()
	require.NoError(t, schema.Check(ctx, db))
	// Simulate a database left behind by an older binary.
	_, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)`)
	require.NoError(t, err)
	require.ErrorIs(t, schema.Check(ctx, db), schema.ErrNotMigrated)
}

// TestMigrateTunesRiversGINIndexes: River's GIN indexes merge their pending list in small
// steps, not in one stall of a job insert (see tuneRiver).
func TestMigrateTunesRiversGINIndexes(t *testing.T) {
	t.Parallel()
	db := emptyDB(t)
	_, err := schema.Migrate(context.Background(), db)
	require.NoError(t, err)
	var opts []string
	for _, index := range []string{"river_job_args_index", "river_job_metadata_index"} {
		var o sql.NullString
		require.NoError(t, db.QueryRow(`SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = $1`, index).Scan(&o))
		opts = append(opts, o.String)
	}
	require.Equal(t, []string{"gin_pending_list_limit=256", "gin_pending_list_limit=256"}, opts)
}
