// Package validate checks the shape of the requests the enclave receives, from the
// `validate:"..."` tags on their types (github.com/go-playground/validator/v10), and answers
// every problem of a request at once, named by its JSON path, so a VASP engineer fixes a body
// with three mistakes in one round trip. Rules that need the registry or the database (asset
// and network resolution, addresses on a network, roles, a transfer's state) stay in the domain
// packages and run after this check.
//
// Besides the built-in tags (required, oneof, max, min, url, ...), these are registered:
//
//	vaspid    a VASP id: 1 to 64 printable ASCII characters, none of space, '/', '?', '#', '%',
//	          and not "." or ".." (it becomes a URL path segment and an HTTP header)
//	decimal   a positive decimal string such as "1.25" (up to 30 integer and 30 fraction digits)
//	decimal0  the same, zero allowed (prices)
//	txhash    a transaction hash: 1 to 200 characters, no whitespace or ':'
//	rfc3339   an ISO 8601 / RFC 3339 date-time such as 2023-05-18T12:39:44Z
//	uuid      replaces the built-in: the canonical 36-character form in either case, as
//	          ids.UUID reads it (the built-in refuses upper case, which VASPs send)
package validate

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
)

// MaxQuoted is how many bytes of a bad value a message quotes (apperr.MaxQuoted).
const MaxQuoted = apperr.MaxQuoted

// engine is the one validator: built with every custom tag before first use and never changed
// after, so sharing it is safe (validator.Validate is safe for concurrent use and caches each
// type's parsed tags).
var engine = newEngine()

// embedded stands in for the name of an embedded struct without a json name: encoding/json
// lifts its fields into the parent, so a JSON path leaves it out.
const embedded = "\x00"

func newEngine() *validator.Validate {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			return ""
		case name == "" && f.Anonymous:
			return embedded
		}
		return name
	})
	for tag, fn := range map[string]func(string) bool{
		"vaspid":   VASPID,
		"decimal":  PositiveDecimal,
		"decimal0": Decimal,
		"txhash":   txHashRe.MatchString,
		"rfc3339":  dateTime,
		"uuid":     func(s string) bool { _, err := ids.UUID("", s); return err == nil },
	} {
		if err := v.RegisterValidation(tag, func(fl validator.FieldLevel) bool {
			return fl.Field().Kind() == reflect.String && fn(fl.Field().String())
		}); err != nil {
			panic(fmt.Sprintf("validate: register %s: %v", tag, err)) // a bad tag name: a programming error
		}
	}
	return v
}

var (
	decimalRe = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,30})?$`)
	// A transaction hash is opaque but never holds a separator of transferReference.
	txHashRe = regexp.MustCompile(`^[^\s:]{1,200}$`)
)

// Decimal reports whether s is a plain decimal string of 0 or more ("1820.17"): digits, at most
// one point, no sign or exponent, as amounts and prices travel exactly.
func Decimal(s string) bool { return decimalRe.MatchString(s) }

// PositiveDecimal reports whether s is a plain decimal string greater than zero.
func PositiveDecimal(s string) bool { return Decimal(s) && strings.Trim(s, "0.") != "" }

// VASPIDRule says what VASPID accepts, for messages about a VASP id checked outside a struct
// (a path parameter, the peers file).
const VASPIDRule = `a VASP id: 1 to 64 printable ASCII characters without spaces, '/', '?', '#' or '%', and not "." or ".."`

// VASPID reports whether s can be a VASP id: it becomes a URL path segment
// (/v1/counterparties/{vaspId}) and an HTTP header (X-Vasp-Id), so it is 1 to 64 printable
// ASCII characters without space, '/', '?', '#' or '%', and not "." or "..".
func VASPID(s string) bool {
	if s == "" || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c > '~' || strings.IndexByte("/?#%", c) >= 0 {
			return false
		}
	}
	return true
}

func dateTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// Struct checks v (a struct or a pointer to one, with `validate:"..."` tags) and returns nil,
// or an *apperr.Error with code BAD-REQUEST whose message lists every problem
// ("assetInfo.amount: must be a positive decimal such as \"1.25\", got \"-1\"; beneficiaryVaspId:
// required"), fields named by their JSON paths, and whose Problems list them as {field, rule}.
// A missing (or blank) verificationUuid is answered first, and alone, exactly as VerifyVASP
// answers it: MISSING-VERIFICATION-UUID, "`verificationUuid` is required.", no problems. Anything
// else (v not a struct) is a programming error, returned as it is.
func Struct(v any) error {
	err := engine.Struct(v)
	var fes validator.ValidationErrors
	if !errors.As(err, &fes) {
		return err
	}
	out := &apperr.Error{Code: apperr.BadRequest, Problems: make([]apperr.Problem, 0, len(fes))}
	msgs := make([]string, 0, len(fes))
	for _, fe := range fes {
		field := path(fe.Namespace())
		out.Problems = append(out.Problems, apperr.Problem{Field: field, Rule: fe.Tag()})
		msgs = append(msgs, field+": "+explain(fe))
		if fe.Field() == "verificationUuid" && (fe.Tag() == "required" || blank(fe.Value())) {
			// VerifyVASP's answer, byte for byte: clients match on it.
			return apperr.New(apperr.MissingVerificationUUID, "`verificationUuid` is required.")
		}
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

// blank reports whether v is a string of spaces only: a verificationUuid of spaces is missing,
// as VerifyVASP reads it, not malformed.
func blank(v any) bool {
	s, ok := v.(string)
	return ok && strings.TrimSpace(s) == ""
}

// path turns a validator namespace ("Draft.assetInfo.amount") into the request's JSON path
// ("assetInfo.amount"): the root type's name and embedded fields left out (a rule on an
// embedded value, such as a json.RawMessage, is about the field that embeds it).
func path(ns string) string {
	_, p, _ := strings.Cut(ns, ".")
	return strings.TrimSuffix(strings.ReplaceAll(p, embedded+".", ""), "."+embedded)
}

// explain says what the field should be, and quotes what it was when that helps.
func explain(fe validator.FieldError) string {
	p := fe.Param()
	switch fe.Tag() {
	case "required", "required_if", "required_unless", "required_with", "required_without":
		return "required"
	case "vaspid":
		return "must be " + VASPIDRule + got(fe)
	case "decimal":
		return `must be a positive decimal such as "1.25"` + got(fe)
	case "decimal0":
		return `must be a decimal such as "1820.17"` + got(fe)
	case "txhash":
		return "must be a transaction hash without spaces or ':' (at most 200 characters)" + got(fe)
	case "rfc3339":
		return "must be an ISO 8601 date-time such as 2023-05-18T12:39:44Z" + got(fe)
	case "uuid":
		return "must be a UUID (the 36-character form, e.g. 3fa85f64-5717-4562-b3fc-2c963f66afa6)" + got(fe)
	case "oneof":
		return "must be one of " + strings.Join(strings.Fields(p), ", ") + got(fe)
	case "url", "http_url":
		return "must be a URL" + got(fe)
	case "max", "lte":
		return size(fe, "at most")
	case "min", "gte":
		return size(fe, "at least")
	case "len":
		return size(fe, "exactly")
	case "gt":
		return size(fe, "more than")
	case "lt":
		return size(fe, "less than")
	}
	if p != "" {
		return "breaks the rule " + fe.Tag() + "=" + p + got(fe)
	}
	return "breaks the rule " + fe.Tag() + got(fe)
}

// size explains a rule on a number, or on a length: of a string in characters, of bytes, of
// a list in items.
func size(fe validator.FieldError, bound string) string {
	p, unit := fe.Param(), ""
	switch {
	case fe.Kind() == reflect.String:
		unit = " characters"
	case fe.Type().Kind() == reflect.Slice && fe.Type().Elem().Kind() == reflect.Uint8:
		unit = " bytes"
	case fe.Kind() == reflect.Slice || fe.Kind() == reflect.Array || fe.Kind() == reflect.Map:
		unit = " items"
		if p == "1" {
			unit = " item"
		}
		return "must hold " + bound + " " + p + unit
	}
	return "must be " + bound + " " + p + unit + got(fe)
}

// got quotes the bad value: a string at most MaxQuoted bytes of it, a number as written;
// nothing for other kinds, whose size is what a rule is about.
func got(fe validator.FieldError) string {
	v := reflect.ValueOf(fe.Value())
	switch v.Kind() {
	case reflect.String:
		return ", got " + Quote(v.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return fmt.Sprintf(", got %v", v.Interface())
	}
	return ""
}

// Quote quotes s as Go does (%q), cut to MaxQuoted bytes at a character boundary, saying how
// long it was when cut: a message stays short whatever a caller sends.
func Quote(s string) string { return apperr.Quote(s) }
