package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/console"
)

// devOperator is the admin operator `enclave dev` logs the developer in as.
const devOperator = "demo-admin"

// printConsoleLogin makes sure the demo admin operator exists, with a new password each start
// (printed once here: the hash alone is kept), and prints the console's URL with that login.
func printConsoleLogin(ctx context.Context, w io.Writer, dsn, base string) error {
	db, err := app.OpenDB(ctx, dsn, 1)
	if err != nil {
		return err
	}
	defer db.Close()
	ops := console.NewOperators(db)
	password, err := ops.Add(ctx, devOperator, console.Admin, "enclave dev")
	if errors.Is(err, console.ErrExists) {
		password, err = ops.ResetPassword(ctx, devOperator, "enclave dev")
	}
	if err != nil {
		return fmt.Errorf("console operator: %w", err)
	}
	fmt.Fprintf(w, "  console: %s/console/  log in as %s, password %s (admin; new at every start)\n\n", base, devOperator, password)
	return nil
}
