// Package apperr is the one error type the enclave shows to its callers: a stable code in the
// VerifyVASP style and a message that is safe to return. Domain packages return it; api/ maps
// its code to an HTTP status in exactly one place. Any other error is internal: logged with
// detail, answered as INTERNAL-ERROR.
package apperr

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Codes, verbatim from the VerifyVASP API where it defines them.
const (
	MissingVerificationUUID   = "MISSING-VERIFICATION-UUID"
	NotFoundVerification      = "NOT-FOUND-VERIFICATION"
	UnsupportedRiskAssessment = "UNSUPPORTED-RISK-ASSESSMENT"
	BadRequest                = "BAD-REQUEST"
	AccessDenied              = "UNKNOWN-ERROR-CODE" // message "AccessDenied"
	NotFound                  = "NOT-FOUND"
	MethodNotAllowed          = "METHOD-NOT-ALLOWED"
	PayloadTooLarge           = "PAYLOAD-TOO-LARGE"
	Unavailable               = "SERVICE-UNAVAILABLE"
	// UnknownVASP names a counterparty the peers file does not list (400).
	UnknownVASP = "UNKNOWN-VASP"
	// Conflict is a message that contradicts a verification's final state (409).
	Conflict = "CONFLICT"
	// RequestTimeout is a synchronous check the counterparty did not answer in time (424).
	RequestTimeout = "REQUEST-TIMEOUT"
	// CounterpartyError is a synchronous check the counterparty answered with an error or
	// something unusable (424).
	CounterpartyError = "COUNTERPARTY-ERROR"
	Internal          = "INTERNAL-ERROR"
)

// Error is an error whose code and message may be shown to the caller as they are.
type Error struct {
	Code    string
	Message string
	// Problems lists, when a request had several faults, each field at fault and the rule it
	// broke, so a client can act on them without parsing Message. Empty otherwise.
	Problems []Problem
}

// Problem is one field of a request at fault: its JSON path (assetInfo.amount,
// payload.ivms101.beneficiary.accountNumber[0]) and the rule it broke (required, decimal, ...).
type Problem struct {
	Field string `json:"field"`
	Rule  string `json:"rule"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns an Error with a formatted message. Every string, byte slice or error among args
// is cut to MaxQuoted bytes as it is formatted (see Clip): a message is shown to the caller and
// logged, and a bad value it quotes is often the caller's own, of any size.
func New(code, format string, args ...any) *Error {
	for i, a := range args {
		switch a := a.(type) {
		case Clip:
		case string:
			args[i] = Clip(a)
		case []byte:
			args[i] = Clip(string(a))
		case error:
			args[i] = Clip(a.Error())
		case fmt.Stringer:
			args[i] = Clip(a.String())
		default:
			if v := reflect.ValueOf(a); v.Kind() == reflect.String { // a named string type (Role, Result)
				args[i] = Clip(v.String())
			}
		}
	}
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// MaxQuoted is how many bytes of a value a message quotes: enough to recognise it, never
// enough to turn an error answer (or the log line that records it) into a copy of a huge body.
const MaxQuoted = 200

// Clip is a value as a message may quote it: formatted with %q it is Quote(s), with %s or %v
// s itself, in both cases cut to MaxQuoted bytes with its length said when cut.
type Clip string

// Format writes c cut to MaxQuoted bytes, quoted for %q.
func (c Clip) Format(f fmt.State, verb rune) {
	s, cut := cutAt(string(c))
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	if cut {
		s += fmt.Sprintf("… (%d bytes)", len(c))
	}
	f.Write([]byte(s)) //nolint:errcheck // fmt's buffer does not fail
}

// Quote quotes s as Go does (%q), cut to MaxQuoted bytes at a character boundary, saying how
// long it was when cut: a message stays short whatever a caller sends.
func Quote(s string) string { return fmt.Sprintf("%q", Clip(s)) }

// cutAt returns s cut to MaxQuoted bytes at a character boundary, and whether it was cut.
func cutAt(s string) (string, bool) {
	if len(s) <= MaxQuoted {
		return s, false
	}
	cut := MaxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}

// Bad is shorthand for a BAD-REQUEST naming what is wrong.
func Bad(format string, args ...any) *Error { return New(BadRequest, format, args...) }

// As returns the Error inside err, if there is one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Message is what err says that may be shown: an Error's message without its code, else the
// error's text (for errors built from the enclave's own words only).
func Message(err error) string {
	if e, ok := As(err); ok {
		return e.Message
	}
	return err.Error()
}

// OneOf checks a list filter's value against the values it may take (any case), or is
// BAD-REQUEST naming the filter and them.
func OneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return nil
		}
	}
	return Bad("%s: want one of %s, got %q", name, strings.Join(allowed, ", "), v)
}
