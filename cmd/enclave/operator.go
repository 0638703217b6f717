package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/console"
)

const operatorEnv = "  DATABASE_URL   PostgreSQL DSN (required)\n"

// runOperator manages the console's operators: add, list, role, disable — the same functions
// the console's operators page calls.
func runOperator(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	const summary = "Manage the operators of the console (/console).\n\n" +
		"  enclave operator add NAME --role viewer|analyst|admin   add one; its password is printed once\n" +
		"  enclave operator list                                  list them\n" +
		"  enclave operator role NAME --role viewer|analyst|admin give one another role\n" +
		"  enclave operator disable NAME                          stop one logging in; ends their sessions\n\n" +
		"A viewer reads every page; an analyst also triages alerts and reveals IVMS101 payloads (audited);\n" +
		"an admin also redelivers callbacks and peer messages and manages operators (also in the console)."
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fs := flags("operator", summary, operatorEnv, stderr)
		fs.Usage()
		if len(args) == 0 {
			return usageError{"operator: want add, list, role or disable"}
		}
		return nil
	}
	verb, rest := args[0], args[1:]
	// NAME may come before or after the flags: `add alice --role admin` reads as people write it.
	var name string
	if len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		name, rest = rest[0], rest[1:]
	}
	fs := flags("operator "+verb, summary, operatorEnv, stderr)
	var role *string
	switch verb {
	case "add", "role":
		role = fs.String("role", "", "viewer, analyst or admin (required)")
	case "list", "disable":
	default:
		return usageError{fmt.Sprintf("operator: unknown action %q; want add, list, role or disable", verb)}
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	left := fs.Args()
	if name == "" && len(left) > 0 { // `add --role admin alice`
		name, left = left[0], left[1:]
	}
	if len(left) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", left[0])}
	}
	if verb != "list" && name == "" {
		return usageError{"operator " + verb + ": NAME is required"}
	}
	if verb == "list" && name != "" {
		return usageError{fmt.Sprintf("unexpected argument %q", name)}
	}
	var r console.Role
	if role != nil {
		var err error
		if r, err = console.ParseRole(*role); err != nil {
			return usageError{"operator " + verb + ": --" + err.Error()}
		}
	}

	cfg := config.Load(getenv)
	if err := cfg.Validate(config.NeedDatabase); err != nil {
		return err
	}
	db, err := openMigrated(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ops := console.NewOperators(db)
	switch verb {
	case "add":
		password, err := ops.Add(ctx, strings.ToLower(name), r, "cli")
		if err != nil {
			return fmt.Errorf("operator add: %w", err)
		}
		fmt.Fprintf(stdout, "operator %s added with role %s.\npassword (shown this once): %s\nlog in at /console/login on the enclave's address\n",
			strings.ToLower(name), r, password)
	case "list":
		list, err := ops.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tSTATE\tCREATED\tLAST LOGIN")
		for _, o := range list {
			state, last := "active", "never"
			if o.DisabledAt.Valid {
				state = "disabled"
			}
			if o.LastLoginAt.Valid {
				last = o.LastLoginAt.Time.UTC().Format("2006-01-02 15:04 UTC")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", o.Name, o.Role, state, o.CreatedAt.UTC().Format("2006-01-02 15:04 UTC"), last)
		}
		return tw.Flush()
	case "role":
		if err := ops.SetRole(ctx, strings.ToLower(name), r, "cli"); err != nil {
			return fmt.Errorf("operator role: %w", err)
		}
		fmt.Fprintf(stdout, "operator %s is now %s, from their next request.\n", strings.ToLower(name), r)
	case "disable":
		if err := ops.Disable(ctx, strings.ToLower(name), "cli"); err != nil {
			return fmt.Errorf("operator disable: %w", err)
		}
		fmt.Fprintf(stdout, "operator %s disabled: they cannot log in, and their sessions end at their next request.\n", strings.ToLower(name))
	}
	return nil
}
