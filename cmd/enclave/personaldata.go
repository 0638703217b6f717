package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/retention"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/verification"
)

const keysetEnv = `  ENCLAVE_DATA_KEYSET       the keyset (JSON), for rotate
  ENCLAVE_DATA_KEYSET_FILE  or a file holding it
`

func runKeyset(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("keyset", "Make or rotate the Tink keyset that encrypts personal data at rest (ENCLAVE_DATA_KEYSET).\n\n"+
		"  enclave keyset new      prints a fresh keyset of one AES-256-GCM key\n"+
		"  enclave keyset rotate   prints the keyset of ENCLAVE_DATA_KEYSET(_FILE) with a new primary key;\n"+
		"                          data sealed with the older keys still opens. Deploy it, then run\n"+
		"                          `enclave rekey` to seal every row under the new key.\n\n"+
		"The keyset is a secret: store it as you store database passwords (a secret manager, a file\n"+
		"only the enclave can read). Without it the personal data in the database cannot be read.", keysetEnv, stderr)
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if err := parse(fs, args); err != nil {
			return err
		}
		return usageError{"keyset: say `new` or `rotate`"}
	}
	verb := args[0]
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	switch verb {
	case "new":
		ks, err := seal.New()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, ks)
		fmt.Fprintln(stderr, "keyset: a new keyset is on stdout; keep it secret (e.g. `enclave keyset new > keyset.json`, then ENCLAVE_DATA_KEYSET_FILE=keyset.json)")
		return nil
	case "rotate":
		cfg := config.Load(getenv)
		if err := cfg.Validate(0); err != nil {
			return err
		}
		if cfg.DataKeyset == "" {
			return usageError{"keyset rotate: set ENCLAVE_DATA_KEYSET or ENCLAVE_DATA_KEYSET_FILE to the keyset to rotate"}
		}
		ks, id, err := seal.Rotate(cfg.DataKeyset)
		if err != nil {
			return fmt.Errorf("keyset rotate: %w", err)
		}
		fmt.Fprintln(stdout, ks)
		fmt.Fprintf(stderr, "keyset: the rotated keyset is on stdout, with new primary key %d; deploy it, then run `enclave rekey`\n", id)
		return nil
	default:
		return usageError{fmt.Sprintf("keyset: unknown %q; say `new` or `rotate`", verb)}
	}
}

func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("rekey", "Seal every verification's payload under the keyset's primary key: rows written before payloads\n"+
		"were encrypted, and rows sealed with an older key after `enclave keyset rotate`. Online, in small\n"+
		"batches (one short transaction each), safe to interrupt and to run from several processes at once.",
		"  DATABASE_URL              PostgreSQL DSN (required)\n"+keysetEnv, stderr)
	batch := fs.Int("batch", 200, "rows sealed per transaction")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := config.Load(getenv)
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	if cfg.DataKeyset == "" {
		return usageError{"rekey: set ENCLAVE_DATA_KEYSET or ENCLAVE_DATA_KEYSET_FILE"}
	}
	if *batch < 1 || *batch > 10000 {
		return usageError{"rekey: --batch must be from 1 to 10000"}
	}
	s, err := seal.Load(cfg.DataKeyset)
	if err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := verification.NewService(db, network.Default(), cfg.VaspID, s)
	total := 0
	for {
		p, err := svc.Rekey(ctx, *batch)
		if err != nil {
			return err
		}
		total += p.Resealed
		if p.Resealed > 0 {
			fmt.Fprintf(stdout, "rekey: %d sealed under key %d so far, %d to go\n", total, s.Primary(), p.Remaining)
		}
		if p.Resealed == 0 {
			if p.Remaining > 0 {
				fmt.Fprintf(stdout, "rekey: %d rows are being sealed by another process; run again to check\n", p.Remaining)
				return nil
			}
			fmt.Fprintf(stdout, "rekey: done: %d sealed now; every payload is under key %d\n", total, s.Primary())
			return nil
		}
	}
}

func runPurge(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("purge", "Delete verifications older than ENCLAVE_RETENTION with their assessments, alerts and callbacks,\n"+
		"now, in batches (serve does the same every hour). A verification whose assessment is still open\n"+
		"or whose callback is still being delivered is kept until that ends. --dry-run only counts.",
		"  DATABASE_URL        PostgreSQL DSN (required)\n  ENCLAVE_RETENTION   how long to keep them, e.g. 1825d (required)\n", stderr)
	dry := fs.Bool("dry-run", false, "print what would be deleted, delete nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	cfg := config.Load(getenv)
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	if cfg.Retention <= 0 {
		return usageError{"purge: set ENCLAVE_RETENTION (e.g. 1825d); without it nothing is ever deleted"}
	}
	db, err := openMigrated(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := retention.NewPurger(db, cfg.Retention, nil, nil)
	if err != nil {
		return err
	}
	if *dry {
		c, err := p.DryRun(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "purge --dry-run: older than %s, would delete %d verifications, %d assessments, %d screenings, %d alerts, %d callbacks, %d peer messages\n",
			cfg.Retention, c.Verifications, c.Assessments, c.Screenings, c.Alerts, c.Callbacks, c.PeerMessages)
		return nil
	}
	c, err := p.Run(ctx, 500, 50*time.Millisecond)
	fmt.Fprintf(stdout, "purge: older than %s, deleted %d verifications, %d assessments, %d screenings, %d alerts, %d callbacks, %d peer messages\n",
		cfg.Retention, c.Verifications, c.Assessments, c.Screenings, c.Alerts, c.Callbacks, c.PeerMessages)
	return err
}

// openMigrated opens a small pool on a database that must be migrated, as the maintenance
// commands need.
func openMigrated(ctx context.Context, dsn string) (*sqlx.DB, error) {
	db, err := app.OpenDB(ctx, dsn, 2)
	if err != nil {
		return nil, err
	}
	if err := schema.Check(ctx, db.DB); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}
