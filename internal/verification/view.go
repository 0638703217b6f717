package verification

import (
	"encoding/json"

	"github.com/travelrule/enclave/internal/jsontime"
)

// View is a verification as the API shows it (GET /v1/verifications/{uuid}) and as the
// VERIFICATION_REQUEST callback carries it: one shape for both, so a backend reads them alike.
type View struct {
	VerificationUUID        string          `json:"verificationUuid"`
	Role                    string          `json:"role"`
	OriginatingVaspID       string          `json:"originatingVaspId"`
	BeneficiaryVaspID       string          `json:"beneficiaryVaspId"`
	AssetInfo               AssetView       `json:"assetInfo"`
	OriginatorAddress       *string         `json:"originatorAddress"`
	BeneficiaryAddress      string          `json:"beneficiaryAddress"`
	RequiredBeneficiaryInfo *string         `json:"requiredBeneficiaryInfo"`
	Payload                 json.RawMessage `json:"payload,omitempty"` // left out of lists unless include=payload
	// PayloadError, with payload null, says why a list with include=payload could not show this
	// verification's payload (it does not open with the keyset); the other rows are intact.
	PayloadError *string        `json:"payloadError,omitempty"`
	Result       string         `json:"result"`
	Reason       *string        `json:"reason"`
	Message      *string        `json:"message"`
	ResultAt     *jsontime.Time `json:"resultAt"`
	// ResultIVMS101 is the beneficiary IVMS101 the beneficiary VASP returned, shown only where
	// the payload is.
	ResultIVMS101 *ResultIVMS101 `json:"resultIvms101,omitempty"`
	ErrorReport   *ErrorView     `json:"errorReport"`
	TxHash        *string        `json:"txHash"`
	Vout          *int           `json:"vout"`
	OrderedAt     *jsontime.Time `json:"orderedAt"`
	CreatedAt     jsontime.Time  `json:"createdAt"`
	UpdatedAt     jsontime.Time  `json:"updatedAt"`
}

// AssetView is the transfer's asset as shown.
type AssetView struct {
	Symbol               string  `json:"symbol"`
	Network              *string `json:"network"`
	Amount               string  `json:"amount"`
	TradePrice           *string `json:"tradePrice,omitempty"`
	TradeCurrency        *string `json:"tradeCurrency,omitempty"`
	TradeISODateTime     *string `json:"tradeISODateTime,omitempty"`
	IsExceedingThreshold *bool   `json:"isExceedingThreshold,omitempty"`
}

// ResultIVMS101 holds the beneficiary object the beneficiary VASP returned.
type ResultIVMS101 struct {
	Beneficiary json.RawMessage `json:"beneficiary"`
}

// ErrorView is an error report as shown.
type ErrorView struct {
	Result  string        `json:"result"`
	Reason  string        `json:"reason"`
	Message *string       `json:"message"`
	From    string        `json:"from"`
	At      jsontime.Time `json:"at"`
}

// View renders v; the payload and the returned beneficiary IVMS101 appear only when v was
// read with them.
func (v Verification) View() View {
	out := View{
		VerificationUUID: v.UUID, Role: string(v.Role),
		OriginatingVaspID: v.OriginatingVaspID, BeneficiaryVaspID: v.BeneficiaryVaspID,
		AssetInfo: AssetView{
			Symbol: v.Asset, Network: opt(v.Network), Amount: v.Amount, TradePrice: opt(v.TradePrice),
			TradeCurrency: opt(v.TradeCurrency), TradeISODateTime: opt(v.TradeISODateTime),
			IsExceedingThreshold: v.IsExceedingThreshold,
		},
		OriginatorAddress: opt(v.OriginatorAddress), BeneficiaryAddress: v.BeneficiaryAddress,
		RequiredBeneficiaryInfo: opt(v.RequiredBeneficiaryInfo),
		Payload:                 v.Payload, Result: string(v.Outcome.Result), Reason: opt(v.Outcome.Reason), Message: opt(v.Outcome.Message),
		ResultAt: jsontime.Of(v.ResultAt), TxHash: opt(v.TxHash), Vout: v.Vout, OrderedAt: jsontime.Of(v.OrderedAt),
		CreatedAt: jsontime.Time{Time: v.CreatedAt}, UpdatedAt: jsontime.Time{Time: v.UpdatedAt},
	}
	if v.PayloadError != "" {
		out.Payload, out.PayloadError = json.RawMessage("null"), &v.PayloadError
	}
	if len(v.Payload) > 0 && len(v.Outcome.Beneficiary) > 0 {
		out.ResultIVMS101 = &ResultIVMS101{Beneficiary: v.Outcome.Beneficiary}
	}
	if r := v.ErrorReport; r != nil {
		out.ErrorReport = &ErrorView{Result: r.Result, Reason: r.Reason, Message: opt(r.Message), From: r.From, At: jsontime.Time{Time: r.At}}
	}
	return out
}

// Message renders v as the verification message a counterparty enclave receives
// (POST /peer/v1/verifications): the VerifyVASP request with verificationUuid and
// originatingVaspId. v must have been read with its payload.
func (v Verification) Message() ([]byte, error) {
	d := Inbound{VerificationUUID: v.UUID, OriginatingVaspID: v.OriginatingVaspID, Draft: Draft{
		BeneficiaryVaspID: v.BeneficiaryVaspID,
		AssetInfo: AssetInfo{Symbol: v.Asset, Network: v.Network, Amount: Decimal(v.Amount), TradePrice: Decimal(v.TradePrice),
			TradeCurrency: v.TradeCurrency, TradeISODateTime: v.TradeISODateTime, IsExceedingThreshold: v.IsExceedingThreshold},
		Payload: Payload{RawMessage: v.Payload},
	}}
	if v.RequiredBeneficiaryInfo != "" {
		d.RequiredBeneficiaryInfo, _ = json.Marshal(v.RequiredBeneficiaryInfo)
	}
	return json.Marshal(d)
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
