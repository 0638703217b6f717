package sqlpage

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/travelrule/enclave/internal/apperr"
)

// cursor is the position after a page's last row, as the next page's request carries it:
// base64url of this JSON. It names its list, so that it is refused by any other; its key
// reaches SQL only as bound parameters, checked first to be of the key's types. The filters
// are not in it: a cursor sent with other filters reads the rows after its key that match
// those, which is well defined.
type cursor struct {
	List string `json:"l"`
	// Rank is the row's rank, in a list that has one (List.Rank).
	Rank int `json:"r,omitempty"`
	// Time is the row's sort time in microseconds since 1970, PostgreSQL's precision.
	Time   time.Time `json:"-"`
	Micros int64     `json:"t"`
	ID     string    `json:"k"`
	// Offset counts the matching rows before the page the cursor starts.
	Offset int `json:"o"`
}

func encodeCursor(c cursor) string {
	c.Micros = c.Time.UnixMicro()
	b, _ := json.Marshal(c) // a struct of strings and numbers always marshals
	return base64.RawURLEncoding.EncodeToString(b)
}

// earliest and latest bound a cursor's time to what PostgreSQL's timestamptz holds and Go
// writes (years 1 to 9999).
var earliest, latest = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)

func decodeCursor(s string, l List) (cursor, error) {
	bad := apperr.Bad("cursor: not a cursor of this list; pass the `next` of a page of %s as it was answered", l.Name)
	var c cursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || json.Unmarshal(b, &c) != nil || c.List != l.Name || c.Offset < 0 ||
		c.ID == "" || len(c.ID) > 255 || !utf8.ValidString(c.ID) || strings.ContainsRune(c.ID, 0) {
		return c, bad
	}
	c.Time = time.UnixMicro(c.Micros).UTC()
	if c.Time.Before(earliest) || c.Time.After(latest) {
		return c, bad
	}
	if l.UUIDKey {
		u, err := uuid.Parse(c.ID)
		if err != nil || len(c.ID) != 36 {
			return c, bad
		}
		c.ID = u.String()
	}
	return c, nil
}
