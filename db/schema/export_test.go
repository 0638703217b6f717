package schema

import (
	"context"
	"database/sql"
)

// RollBack reverts one migration of db, whatever its number: a test seam for a database that
// lacks an older migration than its newest.
func RollBack(ctx context.Context, db *sql.DB, version int64) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	_, err = p.ApplyVersion(ctx, version, false)
	return err
}
