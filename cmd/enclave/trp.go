package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/exchange"
)

const trpEnv = `  ENCLAVE_TRP_URL   the URL counterparties reach this enclave's TRP listener at (required)
`

// runTRP is `enclave trp address <wallet>`: the Travel Address a TRP originator sends its
// inquiry about one of our wallets to.
func runTRP(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("trp", "Issue the Travel Address (OpenVASP TRP v3) of one of this VASP's wallets.\n\n"+
		"  enclave trp address <wallet>   prints ta…: an originator's TRP inquiry to it reaches this\n"+
		"                                 enclave's TRP listener (ENCLAVE_TRP_URL/transfers/<wallet>)", trpEnv, stderr)
	if len(args) == 0 || args[0] != "address" {
		if err := parse(fs, args); err != nil {
			return err
		}
		return usageError{"trp: say `address <wallet>`"}
	}
	if len(args) != 2 || strings.HasPrefix(args[1], "-") {
		if err := parse(fs, args[1:]); err != nil {
			return err
		}
		return usageError{"trp address: name one wallet address"}
	}
	cfg := config.Load(getenv)
	if cfg.TRPURL == "" {
		return usageError{"trp address: set ENCLAVE_TRP_URL to the URL counterparties reach the TRP listener at"}
	}
	ta, err := exchange.TRPAddress(cfg.TRPURL, args[1])
	if err != nil {
		return fmt.Errorf("trp address: %w (ENCLAVE_TRP_URL or the wallet)", err)
	}
	fmt.Fprintln(stdout, ta)
	return nil
}
