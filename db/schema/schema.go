// Package schema owns the database schema: the enclave's numbered goose migrations, embedded
// in the binary, and River's own tables. Migrate applies both under one advisory lock, so two
// processes migrating at once take turns; Check tells serve whether it may start.
package schema

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var migrations embed.FS

// lockID is the PostgreSQL advisory lock key held while migrating ("enclave" in ASCII).
const lockID = 0x656e636c617665

// ErrNotMigrated means the database lacks migrations this binary needs.
var ErrNotMigrated = fmt.Errorf("database schema is not up to date: run `enclave migrate`")

// Fingerprint names the schema Migrate makes: our migrations and River's version. Test
// harnesses key what they keep of a migrated database by it.
func Fingerprint() string {
	h := sha256.New()
	files, _ := migrations.ReadDir(".")
	for _, f := range files {
		b, _ := migrations.ReadFile(f.Name())
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name(), len(b))
		h.Write(b)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if strings.HasPrefix(d.Path, "github.com/riverqueue/river") {
				fmt.Fprintf(h, "%s@%s\x00", d.Path, d.Version)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Result says what Migrate applied.
type Result struct {
	// Enclave are the versions of our migrations applied by this call.
	Enclave []int64
	// River are the versions of River's migrations applied by this call.
	River []int
}

// Migrate brings the database up to date: ours, then River's. It is safe to run twice and
// from several processes at once.
func Migrate(ctx context.Context, db *sql.DB) (Result, error) {
	var res Result
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, lockID); err != nil {
		return res, fmt.Errorf("migrate: take lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, lockID) //nolint:errcheck // the session ends with conn anyway

	p, err := provider(db)
	if err != nil {
		return res, err
	}
	applied, err := p.Up(ctx)
	if err != nil {
		return res, fmt.Errorf("migrate enclave schema: %w", err)
	}
	for _, r := range applied {
		res.Enclave = append(res.Enclave, r.Source.Version)
	}

	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return res, fmt.Errorf("migrate river: %w", err)
	}
	rr, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return res, fmt.Errorf("migrate river schema: %w", err)
	}
	for _, v := range rr.Versions {
		res.River = append(res.River, v.Version)
	}
	if _, err := conn.ExecContext(ctx, tuneRiver); err != nil {
		return res, fmt.Errorf("tune river schema: %w", err)
	}
	return res, nil
}

// tuneRiver drops River's two GIN indexes, on river_job's args and metadata. River itself
// never reads through them (only its optional job-list filter by metadata would); they exist
// for ad-hoc queries. Yet every job insert and every change of a job's state (fetch, snooze,
// completion: state is indexed, so none of those updates is HOT) writes new entries into both,
// which made River's statements two thirds of PostgreSQL's WAL per assessment (issue 9,
// pg_stat_statements over 9,600 assessments). Applied after every migration, so that a River
// migration that recreated them would not bring the cost back unnoticed.
const tuneRiver = `DROP INDEX IF EXISTS river_job_args_index;
DROP INDEX IF EXISTS river_job_metadata_index`

// Check returns ErrNotMigrated (wrapped with what is missing) when either schema lacks a
// migration this binary carries.
func Check(ctx context.Context, db *sql.DB) error {
	p, err := provider(db)
	if err != nil {
		return err
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("%w (enclave schema: %v)", ErrNotMigrated, err)
	}
	if current < target {
		return fmt.Errorf("%w (enclave schema at version %d of %d)", ErrNotMigrated, current, target)
	}
	// A migration numbered below the current version (merged from a branch after a later one
	// was applied) is pending too.
	if pending, err := p.HasPending(ctx); err != nil {
		return fmt.Errorf("%w (enclave schema: %v)", ErrNotMigrated, err)
	} else if pending {
		return fmt.Errorf("%w (enclave schema: a migration below version %d is not applied)", ErrNotMigrated, current)
	}
	m, err := rivermigrate.New(riverdatabasesql.New(db), nil)
	if err != nil {
		return fmt.Errorf("check river schema: %w", err)
	}
	v, err := m.Validate(ctx, nil)
	if err != nil {
		return fmt.Errorf("%w (river schema: %v)", ErrNotMigrated, err)
	}
	if !v.OK {
		return fmt.Errorf("%w (river schema: %v)", ErrNotMigrated, v.Messages)
	}
	return nil
}

func provider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations, goose.WithDisableGlobalRegistry(true),
		// Branches number their migrations apart and leave gaps (00009 before 00008 lands): a
		// database migrated with the later one still takes the earlier when it arrives.
		goose.WithAllowOutofOrder(true))
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, nil
}
