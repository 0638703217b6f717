package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/console"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/retention"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/verification"
)

const keysetEnv = `  ENCLAVE_DATA_KEYSET       the keyset (JSON), for rotate
  ENCLAVE_DATA_KEYSET_FILE  or a file holding it
`

// rekeyEnv is what rekey reads: the keyset whose primary key seals, never "for rotate".
const rekeyEnv = `  DATABASE_URL              PostgreSQL DSN (required)
  ENCLAVE_DATA_KEYSET       the keyset (JSON) whose primary key every payload is sealed under
  ENCLAVE_DATA_KEYSET_FILE  or a file holding it (one is required)
`

func runKeyset(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("keyset", "Make or rotate the Tink keyset that encrypts personal data at rest (ENCLAVE_DATA_KEYSET).\n\n"+
		"  enclave keyset new --out keyset.json     writes a fresh keyset of one AES-256-GCM key\n"+
		"  enclave keyset rotate --out keyset2.json writes the keyset of ENCLAVE_DATA_KEYSET(_FILE) with a\n"+
		"                          new primary key; data sealed with the older keys still opens. Deploy\n"+
		"                          it, then run `enclave rekey` to seal every row under the new key.\n\n"+
		"--out writes a new file of mode 0600 (it never overwrites one). Without --out the keyset goes to\n"+
		"stdout; when stdout is a file (`> keyset.json`) it is made 0600 too. The keyset is a secret:\n"+
		"store it as you store database passwords (a secret manager, a file only the enclave can read).\n"+
		"Without it the personal data in the database cannot be read.", keysetEnv, stderr)
	outFile := fs.String("out", "", "write the keyset to this new file, mode 0600, instead of stdout")
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
	var ks, done string
	switch verb {
	case "new":
		k, err := seal.New()
		if err != nil {
			return err
		}
		ks, done = k, "a new keyset"
	case "rotate":
		cfg := config.Load(getenv)
		if err := cfg.Validate(0); err != nil {
			return err
		}
		if cfg.DataKeyset == "" {
			return usageError{"keyset rotate: set ENCLAVE_DATA_KEYSET or ENCLAVE_DATA_KEYSET_FILE to the keyset to rotate"}
		}
		k, id, err := seal.Rotate(cfg.DataKeyset)
		if err != nil {
			return fmt.Errorf("keyset rotate: %w", err)
		}
		ks, done = k, fmt.Sprintf("the rotated keyset, with new primary key %d (deploy it, then run `enclave rekey`),", id)
	default:
		return usageError{fmt.Sprintf("keyset: unknown %q; say `new` or `rotate`", verb)}
	}
	if *outFile != "" {
		if err := writeSecretFile(*outFile, ks+"\n"); err != nil {
			return fmt.Errorf("keyset %s: %w", verb, err)
		}
		fmt.Fprintf(stderr, "keyset: %s is in %s (mode 0600); keep it secret, e.g. ENCLAVE_DATA_KEYSET_FILE=%s\n", done, *outFile, *outFile)
		return nil
	}
	fmt.Fprintln(stdout, ks)
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			if err := f.Chmod(0o600); err == nil {
				fmt.Fprintf(stderr, "keyset: %s is on stdout, a file now of mode 0600; keep it so, and secret\n", done)
				return nil
			}
		}
	}
	fmt.Fprintf(stderr, "keyset: %s is on stdout; keep it secret: a file holding it must be mode 0600 "+
		"(`--out keyset.json` writes one so), then ENCLAVE_DATA_KEYSET_FILE=keyset.json\n", done)
	return nil
}

// writeSecretFile writes a new file readable by its owner only. It never replaces a file: a
// keyset written over the only copy of the one in use would leave the data unreadable.
func writeSecretFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; it is never overwritten (it may be the keyset in use): choose another name", path)
		}
		return err
	}
	if err := f.Chmod(0o600); err != nil { // whatever the umask or the directory's ACL made it
		f.Close()
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("rekey", "Seal every verification's payload, then every console note on an alert, under the keyset's primary\n"+
		"key: rows written before they were encrypted, and rows sealed with an older key after `enclave keyset rotate`. Online, in small\n"+
		"batches (one short transaction each), safe to interrupt and to run from several processes at once.",
		rekeyEnv, stderr)
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
			return rekeyNotes(ctx, db, s, *batch, stdout)
		}
	}
}

// rekeyNotes seals the console's notes on alerts (an analyst's words, which may name a person)
// under the primary key, as the payloads before them.
func rekeyNotes(ctx context.Context, db *sqlx.DB, s *seal.Sealer, batch int, stdout io.Writer) error {
	notes := console.NewTriages(db, s)
	total := 0
	for {
		n, left, err := notes.Rekey(ctx, batch)
		if err != nil {
			return err
		}
		total += n
		if n == 0 {
			if left > 0 {
				fmt.Fprintf(stdout, "rekey: %d notes are being sealed by another process; run again to check\n", left)
				return nil
			}
			fmt.Fprintf(stdout, "rekey: done: %d console notes sealed now; every note is under key %d\n", total, s.Primary())
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
