// Package jsontime renders times the one way the enclave's API and callbacks write them:
// UTC with milliseconds, "2006-01-02T15:04:05.000Z", as in the VerifyVASP examples.
package jsontime

import (
	"database/sql"
	"time"
)

// Layout is the enclave's time format.
const Layout = "2006-01-02T15:04:05.000Z"

// Time marshals as Layout in UTC.
type Time struct{ time.Time }

// Of wraps t; a nil pointer stays nil so optional times are omitted or null.
func Of(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{*t}
}

// MarshalJSON writes the time in Layout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + t.UTC().Format(Layout) + `"`), nil
}

// Format renders t in Layout.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// FormatNull renders a time read from a nullable column: nil (JSON null) when NULL.
func FormatNull(t sql.NullTime) *string {
	if !t.Valid {
		return nil
	}
	s := Format(t.Time)
	return &s
}
