package verification

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/validate"
)

// Result is the beneficiary VASP's answer to a verification (DESIGN.md §12): PENDING until it
// arrives, then one of the four terminal results.
type Result string

// The results, VerifyVASP's words.
const (
	Pending  Result = "PENDING"
	Verified Result = "VERIFIED" // the beneficiary is the VASP's customer and matches
	Denied   Result = "DENIED"   // the address is the VASP's, but something about the user is wrong
	Unknown  Result = "UNKNOWN"  // the address is not the VASP's
	Error    Result = "ERROR"    // anything else: timeout, mismatch, a refused message
)

// Terminal reports whether r is final.
func (r Result) Terminal() bool { return r == Verified || r == Denied || r == Unknown || r == Error }

// Reasons, verbatim from VerifyVASP.
const (
	ReasonOK                    = "OK"
	ReasonRequestTimeout        = "REQUEST-TIMEOUT"
	ReasonAccountNotMatched     = "BENEFICIARY-ACCOUNT-NOT-MATCHED"
	ReasonUndefinedError        = "UNDEFINED-ERROR"
	ReasonUnavailableInfo       = "UNAVAILABLE-INFORMATION"
	ReasonLackOfInformation     = "LACK-OF-INFORMATION"
	ReasonBlacklisted           = "BLACKLISTED"
	ReasonMismatchedName        = "MISMATCHED-NAME"
	ReasonUnknownAddress        = "UNKNOWN-ADDRESS"
	ReasonUnverifiedKYC         = "UNVERIFIED-KYC"
	ReasonNotAllowed            = "NOT-ALLOWED"
	ReasonUnknownSymbol         = "UNKNOWN-SYMBOL"
	ReasonUnknownNetwork        = "UNKNOWN-NETWORK"
	reasonMaxLen, messageMaxLen = 64, 1000
)

// DeniedReasons are the reasons a DENIED result may give.
var DeniedReasons = []string{ReasonUnknownSymbol, ReasonUnknownNetwork, ReasonUnknownAddress, ReasonLackOfInformation,
	ReasonUnavailableInfo, ReasonBlacklisted, ReasonUnverifiedKYC, ReasonMismatchedName, ReasonNotAllowed, ReasonUndefinedError}

// Outcome is a result with its reason and message, and the beneficiary IVMS101 the beneficiary
// VASP returned (personal data: sealed at rest).
type Outcome struct {
	Result      Result
	Reason      string
	Message     string
	Beneficiary json.RawMessage
}

// ErrorReport is a cancellation either side sent (POST /v1/verifications/error): VerifyVASP
// allows any of its results there, and TRANSFER_ERROR.
type ErrorReport struct {
	Result  string    `json:"result" validate:"required,oneof=VERIFIED DENIED UNKNOWN ERROR PENDING TRANSFER_ERROR"`
	Reason  string    `json:"reason" validate:"required,max=64"`
	Message string    `json:"message,omitempty" validate:"max=1000"`
	At      time.Time `json:"-"`
	// From says which side sent it: SELF (this VASP's backend) or COUNTERPARTY.
	From string `json:"-"`
}

// Who sent an error report.
const (
	FromSelf         = "SELF"
	FromCounterparty = "COUNTERPARTY"
)

// Event is what happens to a verification's result.
type Event int

// The events of the exchange.
const (
	// Answered: the beneficiary VASP's answer (through the Verify User API, the result route,
	// or the counterparty's result message).
	Answered Event = iota
	// Cancelled: an error report from either side.
	Cancelled
	// TimedOut: the originator stopped waiting (ENCLAVE_VERIFICATION_TIMEOUT).
	TimedOut
)

// Transition is the one table of the exchange's result states: what event e carrying o does
// to a verification whose result is now cur. It returns the outcome to store and whether the
// result changes; an answer that contradicts a final result is CONFLICT, the same answer again
// is a harmless no-change.
//
//	from      event                 to
//	PENDING   Answered(PENDING)     PENDING (the VASP reviews; it answers later)
//	PENDING   Answered(r)           r
//	PENDING   Cancelled(r)          r if DENIED, UNKNOWN or ERROR; else ERROR
//	PENDING   TimedOut              ERROR / REQUEST-TIMEOUT
//	final r   Answered(r), same     r (no change)
//	final r   Answered(other)       CONFLICT
//	final r   Cancelled, TimedOut   r (the error report is kept beside it)
func Transition(cur Outcome, e Event, o Outcome) (Outcome, bool, error) {
	if cur.Result.Terminal() {
		if e == Answered && (o.Result != cur.Result || o.Reason != cur.Reason) {
			return cur, false, apperr.New(apperr.Conflict, "result: the verification already has result %s (%s); %s (%s) contradicts it",
				cur.Result, cur.Reason, o.Result, o.Reason)
		}
		return cur, false, nil
	}
	switch e {
	case Answered:
		if o.Result == Pending {
			return cur, false, nil
		}
		return o, true, nil
	case Cancelled:
		r := Result(o.Result)
		if r != Denied && r != Unknown && r != Error {
			r = Error
		}
		return Outcome{Result: r, Reason: o.Reason, Message: o.Message}, true, nil
	default: // TimedOut
		return Outcome{Result: Error, Reason: ReasonRequestTimeout, Message: "no result from the beneficiary VASP in time"}, true, nil
	}
}

// CheckAnswer applies what an answer's tags cannot say (its shape is checked by them): a
// DENIED result gives one of VerifyVASP's reasons, and PENDING is an answer only where the VASP
// may still answer later (its Verify User API).
func CheckAnswer(o Outcome, allowPending bool) error {
	switch {
	case o.Result == Pending && !allowPending:
		return apperr.Bad("result: PENDING is not an answer here; want VERIFIED, DENIED, UNKNOWN or ERROR")
	case o.Result == Denied && !slices.Contains(DeniedReasons, o.Reason):
		return apperr.Bad("reason: a DENIED result needs one of %s, got %s", strings.Join(DeniedReasons, ", "), validate.Quote(o.Reason))
	}
	return nil
}

// BeneficiaryAccount is the first accountNumber of an IVMS101 beneficiary object, "" if none.
func BeneficiaryAccount(beneficiary json.RawMessage) string {
	var b struct {
		AccountNumber []string `json:"accountNumber"`
	}
	if json.Unmarshal(beneficiary, &b) != nil || len(b.AccountNumber) == 0 {
		return ""
	}
	return strings.TrimSpace(b.AccountNumber[0])
}

// requiredInfo normalises requiredBeneficiaryInfo, which VerifyVASP writes as one
// comma-separated string ("ACCOUNT_NUMBER,NATURAL_PERSON_NAME") and some senders as an array
// of codes, to the comma-separated form.
func requiredInfo(raw json.RawMessage) (string, error) {
	t := strings.TrimSpace(string(raw))
	if t == "" || t == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return checkCodes(strings.Split(s, ","))
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return checkCodes(list)
	}
	return "", apperr.Bad("requiredBeneficiaryInfo: want a comma-separated string of codes such as \"ACCOUNT_NUMBER,NATURAL_PERSON_NAME\"")
}

func checkCodes(codes []string) (string, error) {
	out := make([]string, 0, len(codes))
	for _, c := range codes {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if len(c) > 64 || strings.IndexFunc(c, func(r rune) bool { return !(r == '_' || r == '-' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') }) >= 0 {
			return "", apperr.Bad("requiredBeneficiaryInfo: %s is not a code such as NATURAL_PERSON_NAME", validate.Quote(c))
		}
		out = append(out, c)
	}
	if len(out) > 32 {
		return "", apperr.Bad("requiredBeneficiaryInfo: at most 32 codes")
	}
	return strings.Join(out, ","), nil
}
