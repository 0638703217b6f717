// Package apperr is the one error type the enclave shows to its callers: a stable code in the
// VerifyVASP style and a message that is safe to return. Domain packages return it; api/ maps
// its code to an HTTP status in exactly one place. Any other error is internal: logged with
// detail, answered as INTERNAL-ERROR.
package apperr

import (
	"errors"
	"fmt"
	"strings"
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
	Internal = "INTERNAL-ERROR"
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

// New returns an Error with a formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Bad is shorthand for a BAD-REQUEST naming what is wrong.
func Bad(format string, args ...any) *Error { return New(BadRequest, format, args...) }

// As returns the Error inside err, if there is one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
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
