package app

import (
	"context"
	"strings"
	"testing"
)

// TestOpenDBNeverShowsThePassword: whatever is wrong with DATABASE_URL, the error names it
// and never carries the password.
func TestOpenDBNeverShowsThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Pg-S3cret-Zq8v"
	for _, dsn := range []string{
		"postgres://enclave:" + pw + "@127.0.0.1:notaport/enclave",
		"postgres://enclave:" + pw + "%zz@127.0.0.1:5432/enclave",
		"postgres://enclave:Pg/S3cret-Zq8v@127.0.0.1:5432/enclave",
		"postgres://enclave:" + pw + "@127.0.0.1:1/enclave?sslmode=disable&connect_timeout=2",
		"host=127.0.0.1 port=1 user=enclave password=" + pw + " dbname=enclave sslmode=disable connect_timeout=2",
		"host=127.0.0.1 port=notaport password=" + pw,
	} {
		_, err := OpenDB(context.Background(), dsn, 1)
		if err == nil {
			t.Fatalf("OpenDB(%q) succeeded", dsn)
		}
		msg := err.Error()
		if !strings.Contains(msg, "DATABASE_URL") {
			t.Errorf("the error does not name DATABASE_URL: %s", msg)
		}
		for _, secret := range []string{pw, "Pg/S3cret-Zq8v", "S3cret"} {
			if strings.Contains(msg, secret) {
				t.Errorf("the error carries the password: %s", msg)
			}
		}
	}
}
