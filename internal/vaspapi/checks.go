package vaspapi

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/validate"
)

// VerifiesAccounts reports whether a Verify Account API is configured.
func (c *Client) VerifiesAccounts() bool { return c != nil && c.cfg.VerifyAccountURL != "" }

// ReportsTxStatus reports whether a Transaction Status API is configured.
func (c *Client) ReportsTxStatus() bool { return c != nil && c.cfg.TxStatusURL != "" }

// AccountQuestion is what the Verify Account API receives (VerifyVASP's Verify User Account):
// one account, the beneficiary's name if the originator gave one, and the asset. It is asked
// again for every check and never stored.
type AccountQuestion struct {
	OriginatingVaspID string          `json:"originatingVaspId"`
	BeneficiaryVaspID string          `json:"beneficiaryVaspId"`
	Symbol            string          `json:"symbol"`
	Network           string          `json:"network,omitempty"`
	Version           json.RawMessage `json:"version,omitempty"`
	// IVMS101 is {"beneficiary": {"beneficiaryPersons"?, "accountNumber": [one]}}.
	IVMS101 json.RawMessage `json:"ivms101"`
}

// AccountAnswer is the Verify Account API's answer: VERIFIED, or DENIED with one of
// VerifyVASP's reasons. The result may be named accountVerificationResult (as the enclave
// answers it) or result.
type AccountAnswer struct {
	AccountVerificationResult string `json:"accountVerificationResult" validate:"required_without=Result,omitempty,oneof=VERIFIED DENIED"`
	Result                    string `json:"result" validate:"omitempty,oneof=VERIFIED DENIED"`
	Reason                    string `json:"reason" validate:"max=64"`
	Message                   string `json:"message" validate:"max=1000"`
}

// Verdict returns the result, whichever name it was given under, and its reason (OK for a
// VERIFIED without one).
func (a AccountAnswer) Verdict() (result, reason string) {
	result = a.AccountVerificationResult
	if result == "" {
		result = a.Result
	}
	if result == "VERIFIED" && a.Reason == "" {
		return result, "OK"
	}
	return result, a.Reason
}

// VerifyAccount asks the VASP whether it knows the account (and the name) of q. A DENIED answer
// must give one of the reasons check accepts; anything unusable, a timeout or a non-2xx is a
// *Failure. Nothing of q is kept.
func (c *Client) VerifyAccount(ctx context.Context, q AccountQuestion, check func(AccountAnswer) error) (AccountAnswer, error) {
	var a AccountAnswer
	err := c.ask(ctx, "Verify Account API", c.cfg.VerifyAccountURL, "account_"+uuid.NewString(), q, &a,
		"{accountVerificationResult, reason, message}", func() error { return check(a) })
	return a, err
}

// TxStatus is a transfer's status as the originator's VASP tells it (VerifyVASP's
// Transaction Status), and as a tx inquiry answers it.
type TxStatus struct {
	VerificationUUID string `json:"verificationUuid" validate:"omitempty,uuid"`
	// TransactionStatus: PENDING (broadcast blocked), PROCESSING (sent, not mined), WAIT-CONFIRM
	// (mined, not final), CONFIRMED or CANCELED.
	TransactionStatus string `json:"transactionStatus" validate:"required,oneof=PENDING PROCESSING WAIT-CONFIRM CONFIRMED CANCELED"`
	TxHash            string `json:"txHash,omitempty" validate:"omitempty,txhash"`
	Vout              *int   `json:"vout,omitempty" validate:"omitempty,min=0,max=2147483647"`
}

// TxStatus asks the VASP about the transfer of verification id (one this VASP sent). An
// answer about another verification, a timeout, a non-2xx or anything unusable is a *Failure.
func (c *Client) TxStatus(ctx context.Context, id string) (TxStatus, error) {
	var a TxStatus
	err := c.ask(ctx, "Transaction Status API", c.cfg.TxStatusURL, "txstatus_"+uuid.NewString(), map[string]string{"verificationUuid": id}, &a,
		"{verificationUuid, transactionStatus, txHash}", func() error { return sameVerification(a.VerificationUUID, id) })
	a.VerificationUUID = id
	return a, err
}

// sameVerification checks that an answer about got (if it names one) is about want.
func sameVerification(got, want string) error {
	if got != "" && ids.Canonical(got) != ids.Canonical(want) {
		return apperr.Bad("verificationUuid: the answer is about %s, not %s", validate.Quote(got), want)
	}
	return nil
}
