package exchange

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/strictjson"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/vaspapi"
	"github.com/travelrule/enclave/internal/verification"
)

// ReasonUnsupported is the reason of an ERROR account check whose beneficiary VASP offers no
// Verify Account API (no ENCLAVE_VERIFY_ACCOUNT_URL).
const ReasonUnsupported = "UNSUPPORTED"

// AccountCheck is an account verification (POST /v1/verifications/account, and the same body
// on POST /peer/v1/verifications/account), VerifyVASP's shape: does the beneficiary VASP know
// this wallet — and, when beneficiaryPersons are given, this name? keyType is accepted and not
// used.
type AccountCheck struct {
	BeneficiaryVaspID string         `json:"beneficiaryVaspId" validate:"required,vaspid"`
	KeyType           string         `json:"keyType,omitempty" validate:"max=64"`
	Symbol            string         `json:"symbol" validate:"required,max=64"`
	Network           string         `json:"network,omitempty" validate:"max=64"`
	Payload           AccountPayload `json:"payload"`
}

// AccountPayload is an account check's IVMS101: the beneficiary only, with one account.
type AccountPayload struct {
	Version json.RawMessage `json:"version,omitempty" validate:"max=64"`
	IVMS101 *struct {
		Beneficiary *struct {
			// BeneficiaryPersons is passed on as it came, at most 128 KiB.
			BeneficiaryPersons json.RawMessage `json:"beneficiaryPersons,omitempty" validate:"max=131072"`
			AccountNumber      []string        `json:"accountNumber" validate:"len=1,dive,required,max=256"`
		} `json:"beneficiary" validate:"required"`
	} `json:"ivms101" validate:"required"`
}

// AccountResult is an account check's answer, the same on every hop: VERIFIED (reason OK),
// DENIED with one of VerifyVASP's reasons, or ERROR: REQUEST-TIMEOUT (no answer in time),
// UNSUPPORTED (the beneficiary VASP offers no Verify Account API) or UNDEFINED-ERROR (an answer
// that could not be used).
type AccountResult struct {
	AccountVerificationResult string `json:"accountVerificationResult" validate:"required,oneof=VERIFIED DENIED ERROR"`
	Reason                    string `json:"reason" validate:"required,max=64"`
	Message                   string `json:"message" validate:"max=1000"`
}

// accountErrorReasons are the reasons an ERROR account check gives.
var accountErrorReasons = []string{verification.ReasonRequestTimeout, ReasonUnsupported, verification.ReasonUndefinedError}

// check applies what the tags cannot say: each result's reasons.
func (r AccountResult) check() error {
	switch {
	case r.AccountVerificationResult == string(verification.Verified) && r.Reason != verification.ReasonOK:
		return apperr.Bad("reason: a VERIFIED result gives OK, got %s", validate.Quote(r.Reason))
	case r.AccountVerificationResult == string(verification.Denied) && !slices.Contains(verification.DeniedReasons, r.Reason):
		return apperr.Bad("reason: a DENIED result needs one of %s, got %s", strings.Join(verification.DeniedReasons, ", "), validate.Quote(r.Reason))
	case r.AccountVerificationResult == string(verification.Error) && !slices.Contains(accountErrorReasons, r.Reason):
		return apperr.Bad("reason: an ERROR result needs one of %s, got %s", strings.Join(accountErrorReasons, ", "), validate.Quote(r.Reason))
	}
	return nil
}

// readAccountResult reads a counterparty enclave's answer to an account check: one it may give.
func readAccountResult(body []byte) (AccountResult, error) {
	var r AccountResult
	if err := strictjson.Unmarshal(body, &r); err != nil {
		return r, badAnswer(err, "the body is not a JSON object {accountVerificationResult, reason, message}")
	}
	if err := validate.Struct(r); err != nil {
		return r, err
	}
	return r, r.check()
}

func accountError(reason, format string, args ...any) AccountResult {
	return AccountResult{AccountVerificationResult: string(verification.Error), Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// CheckAccount asks the beneficiary VASP's enclave whether its VASP knows the account of q and
// answers what it said, within CheckTimeout: past it, or when the enclave cannot be reached,
// ERROR / REQUEST-TIMEOUT; an error or an unusable answer from it, ERROR / UNDEFINED-ERROR. A
// beneficiaryVaspId the peers file does not name (or ours) is UNKNOWN-VASP.
func (c *Checks) CheckAccount(ctx context.Context, q AccountCheck) (AccountResult, error) {
	if err := validate.Struct(q); err != nil {
		return AccountResult{}, err
	}
	id := strings.TrimSpace(q.BeneficiaryVaspID)
	if id == c.x.cfg.VaspID {
		return AccountResult{}, apperr.New(apperr.UnknownVASP, "beneficiaryVaspId: %s is this VASP; ask your own backend", validate.Quote(id))
	}
	p, err := c.x.peer("beneficiaryVaspId", id)
	if err != nil {
		return AccountResult{}, err
	}
	q.BeneficiaryVaspID = id
	r := c.askAccount(ctx, p, q)
	c.accounts.WithLabelValues(string(verification.Originator), r.AccountVerificationResult, r.Reason).Inc()
	return r, nil
}

func (c *Checks) askAccount(ctx context.Context, p Peer, q AccountCheck) AccountResult {
	a, err := c.ask(ctx, p, "/peer/v1/verifications/account", q)
	switch {
	case err != nil && a.Status == 0:
		c.log.Warn("account check: no answer from the counterparty", "counterparty", p.VaspID, "err", err.Error())
		return accountError(verification.ReasonRequestTimeout, "the beneficiary VASP's enclave did not answer: %s", err.Error())
	case err != nil:
		problem := describe(err, a)
		c.log.Warn("account check: the counterparty failed", "counterparty", p.VaspID, "status", a.Status, "err", problem)
		return accountError(verification.ReasonUndefinedError, "the beneficiary VASP's enclave %s", problem)
	}
	r, err := readAccountResult(a.Body)
	if err != nil {
		c.log.Warn("account check: the counterparty answered something unusable", "counterparty", p.VaspID, "status", a.Status, "err", apperr.Message(err))
		return accountError(verification.ReasonUndefinedError, "the beneficiary VASP's enclave answered %d with an answer the enclave cannot use: %s", a.Status, apperr.Message(err))
	}
	return r
}

// AnswerAccount answers the account check q the originator enclave sender asks: from this
// VASP's Verify Account API, within ENCLAVE_VASP_API_TIMEOUT; without one, ERROR /
// UNSUPPORTED. A check meant for another VASP is BAD-REQUEST.
func (c *Checks) AnswerAccount(ctx context.Context, sender string, q AccountCheck) (AccountResult, error) {
	if err := validate.Struct(q); err != nil {
		return AccountResult{}, err
	}
	if strings.TrimSpace(q.BeneficiaryVaspID) != c.x.cfg.VaspID {
		return AccountResult{}, apperr.Bad("beneficiaryVaspId: %s is not this VASP", validate.Quote(q.BeneficiaryVaspID))
	}
	r := c.verifyAccount(ctx, sender, q)
	c.accounts.WithLabelValues(string(verification.Beneficiary), r.AccountVerificationResult, r.Reason).Inc()
	return r, nil
}

func (c *Checks) verifyAccount(ctx context.Context, sender string, q AccountCheck) AccountResult {
	if !c.vasp.VerifiesAccounts() {
		return accountError(ReasonUnsupported, "the beneficiary VASP does not offer account verification")
	}
	ivms, err := json.Marshal(map[string]any{"beneficiary": q.Payload.IVMS101.Beneficiary})
	if err != nil {
		return accountError(verification.ReasonUndefinedError, "the account check could not be passed on")
	}
	ctx, cancel := c.withVASPBound(ctx)
	defer cancel()
	a, err := c.vasp.VerifyAccount(ctx, vaspapi.AccountQuestion{OriginatingVaspID: sender, BeneficiaryVaspID: c.x.cfg.VaspID,
		Symbol: q.Symbol, Network: q.Network, Version: q.Payload.Version, IVMS101: ivms}, func(a vaspapi.AccountAnswer) error {
		result, reason := a.Verdict()
		return AccountResult{AccountVerificationResult: result, Reason: reason}.check()
	})
	var f *vaspapi.Failure
	switch {
	case errors.As(err, &f) && f.Timeout:
		c.log.Warn("Verify Account API: no answer in time", "originator", sender, "err", f.Reason)
		return accountError(verification.ReasonRequestTimeout, "the beneficiary VASP's Verify Account API did not answer in time")
	case err != nil:
		status := 0
		if f != nil {
			status = f.Status
		}
		c.log.Warn("Verify Account API failed", "originator", sender, "status", status, "err", err.Error())
		if status == 0 {
			return accountError(verification.ReasonUndefinedError, "the beneficiary VASP's Verify Account API could not be reached")
		}
		return accountError(verification.ReasonUndefinedError, "the beneficiary VASP's Verify Account API failed (answered %d)", status)
	}
	result, reason := a.Verdict()
	return AccountResult{AccountVerificationResult: result, Reason: reason, Message: a.Message}
}
