package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/config"
)

// runHealthcheck asks a serving enclave's /readyz and succeeds only on a 200: the container
// image's HEALTHCHECK, since the image holds nothing but the binary (no shell, no curl).
func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flags("healthcheck", "GET /readyz of the enclave serving on this machine and exit 0 when it answers 200 (ready:\n"+
		"the database is reachable and migrated), 1 otherwise. It is the container image's HEALTHCHECK:\n"+
		"the image has no shell and no curl.",
		"  ENCLAVE_LISTEN_ADDR  where serve listens (default :8080); a wildcard host is asked on 127.0.0.1\n", stderr)
	target := fs.String("url", "", "the URL to GET instead of /readyz on ENCLAVE_LISTEN_ADDR")
	timeout := fs.Duration("timeout", 4*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	u := *target
	if u == "" {
		u = readyzURL(getenv("ENCLAVE_LISTEN_ADDR"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return usageError{fmt.Sprintf("healthcheck: %v", err)}
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %s: not ready: %w", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s: not ready: %s %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "healthcheck: %s: ready\n", u)
	return nil
}

// readyzURL is /readyz on the address serve listens on; a wildcard or empty host is asked on
// the loopback address.
func readyzURL(listen string) string {
	if strings.TrimSpace(listen) == "" {
		listen = config.DefaultListenAddr
	}
	host, port, err := net.SplitHostPort(strings.TrimSpace(listen))
	if err != nil {
		host, port = "127.0.0.1", strings.TrimPrefix(listen, ":")
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/readyz"
}
