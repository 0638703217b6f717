// Package ids reads the identifiers that arrive from outside. uuid.Parse accepts spellings
// PostgreSQL does not ("urn:uuid:…", "{…}", 32 bare hex digits), and a spelling let through to
// SQL came back as a 500: here only the canonical 36-character form is a UUID, and what
// reaches the database is the parsed value, written canonically.
package ids

import (
	"bytes"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/travelrule/enclave/internal/apperr"
)

// UUID returns s as a canonical lower-case UUID, or BAD-REQUEST naming field. Surrounding
// spaces are forgiven.
func UUID(field, s string) (string, error) {
	t := strings.TrimSpace(s)
	u, err := uuid.Parse(t)
	if err != nil || len(t) != 36 {
		return "", apperr.Bad("%s: %q is not a UUID (want the 36-character form, e.g. 3fa85f64-5717-4562-b3fc-2c963f66afa6)", field, s)
	}
	return u.String(), nil
}

// Canonical is a UUID that UUID (or the uuid rule of internal/validate) accepted, written as
// the database and every answer write it: without the forgiven spaces, in lower case.
func Canonical(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// idempotencyNamespace scopes the UUIDs derived from Idempotency-Key values.
var idempotencyNamespace = uuid.MustParse("6f1a4c0e-3b7d-5e2a-9c41-8d5b2e7f0a13")

// IdempotencyWindow is how long an Idempotency-Key answers its first answer again.
const IdempotencyWindow = 24 * time.Hour

// FromIdempotencyKey is the id of the thing a request with Idempotency-Key key creates on
// route: the same key on the same route always names the same row, so the database's primary
// key makes a retried request find the first one, across replicas and however close together.
// An invalid key is BAD-REQUEST naming the header.
func FromIdempotencyKey(route, key string) (string, error) {
	if key == "" || len(key) > 255 || strings.IndexFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return "", apperr.Bad("Idempotency-Key: want 1 to 255 printable ASCII characters without spaces")
	}
	return uuid.NewSHA1(idempotencyNamespace, []byte(route+"\x00"+key)).String(), nil
}

// Replayed answers a request whose Idempotency-Key met the row an earlier request created:
// nil when it is the same request (the same hash, first, as sum) within IdempotencyWindow, so
// the first answer goes out again; otherwise BAD-REQUEST naming the header.
func Replayed(first, sum []byte, created time.Time) error {
	switch {
	case time.Since(created) > IdempotencyWindow:
		return apperr.Bad("Idempotency-Key: this key was used more than %s ago; use a new key", IdempotencyWindow)
	case !bytes.Equal(first, sum):
		return apperr.Bad("Idempotency-Key: this key was used with another request body")
	}
	return nil
}
