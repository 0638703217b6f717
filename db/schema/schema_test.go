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

// TestMigrateDropsRiversGINIndexes: no job insert or state change pays for River's GIN
// indexes, which River does not use (see tuneRiver), and River still validates the schema.
func TestMigrateDropsRiversGINIndexes(t *testing.T) {
	t.Parallel()
	db := emptyDB(t)
	_, err := schema.Migrate(context.Background(), db)
	require.NoError(t, err)
	var gin string
	require.NoError(t, db.QueryRow(`SELECT coalesce(string_agg(i.relname, ','), '') FROM pg_index x
		JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid JOIN pg_am am ON am.oid = i.relam
		WHERE t.relname = 'river_job' AND am.amname = 'gin'`).Scan(&gin))
	require.Empty(t, gin)
	require.NoError(t, schema.Check(context.Background(), db))
}
