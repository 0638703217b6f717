package schema_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/dbtest"
)

// TestMissingLowerMigration: migrations merge from branches in any order, so numbers have gaps
// (00010 before 00008 exists) and a database may have a newer migration without an older one.
// Check notices the older one missing, and Migrate applies it.
func TestMissingLowerMigration(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t).DB
	ctx := context.Background()
	require.NoError(t, schema.Check(ctx, db))
	require.NoError(t, schema.RollBack(ctx, db, 7)) // as if 00007 came after the newest applied
	require.ErrorIs(t, schema.Check(ctx, db), schema.ErrNotMigrated)
	res, err := schema.Migrate(ctx, db)
	require.NoError(t, err)
	require.Equal(t, []int64{7}, res.Enclave)
	require.NoError(t, schema.Check(ctx, db))
}
