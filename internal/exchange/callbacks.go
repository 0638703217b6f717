package exchange

import (
	"github.com/travelrule/enclave/internal/verification"
	"github.com/travelrule/enclave/webhook"
)

// The exchange's callback types (DESIGN.md §6), VerifyVASP's names.
const (
	TypeVerificationResult  = webhook.TypeVerificationResult
	TypeTxReport            = webhook.TypeTxReport
	TypeErrorReport         = webhook.TypeErrorReport
	TypeVerificationRequest = webhook.TypeVerificationRequest
)

// callbackBody is every callback's envelope.
type callbackBody struct {
	CallbackType string `json:"callbackType"`
	Data         any    `json:"data"`
}

func payload(typ string, data any) callbackBody { return callbackBody{CallbackType: typ, Data: data} }

// resultPayload is a VERIFICATION_RESULT's data without the beneficiary IVMS101, which is added
// from the sealed verification when delivered. VerifyVASP's pages name the result both
// verificationResult and result: both carry it.
type resultPayload struct {
	VerificationUUID   string  `json:"verificationUuid"`
	VerificationResult string  `json:"verificationResult"`
	Result             string  `json:"result"`
	Reason             *string `json:"reason"`
	Message            *string `json:"message"`
}

func resultData(v verification.Verification) resultPayload {
	o := v.Outcome
	return resultPayload{VerificationUUID: v.UUID, VerificationResult: string(o.Result), Result: string(o.Result),
		Reason: ptr(o.Reason), Message: ptr(o.Message)}
}

// txReportData is a TX_REPORT's data.
type txReportData struct {
	VerificationUUID string `json:"verificationUuid"`
	TxHash           string `json:"txHash"`
	Vout             *int   `json:"vout"`
}

// errorData is an ERROR_REPORT's data.
type errorData struct {
	VerificationUUID string `json:"verificationUuid"`
	Result           string `json:"result"`
	Reason           string `json:"reason"`
	Message          string `json:"message"`
}

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
