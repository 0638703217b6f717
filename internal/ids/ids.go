// Package ids reads the identifiers that arrive from outside. uuid.Parse accepts spellings
// PostgreSQL does not ("urn:uuid:…", "{…}", 32 bare hex digits), and a spelling let through to
// SQL came back as a 500: here only the canonical 36-character form is a UUID, and what
// reaches the database is the parsed value, written canonically.
package ids

import (
	"strings"

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
