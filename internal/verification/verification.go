// Package verification keeps the VASP's travel-rule verifications and their Transaction Result
// Reports. It owns the verifications table. A verification is created by this VASP's backend
// (we are ORIGINATOR) or by a counterparty enclave (we are BENEFICIARY); the originator later
// reports the on-chain txHash. Everything the KYT assessment needs to know about a transfer
// is read from here.
package verification

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/validate"
)

// MaxPayloadBytes bounds the IVMS101 payload of a verification: far above what a travel-rule
// message of a few persons needs (a few kB), so that no one stored row, nor a page of them, can
// grow without limit.
const MaxPayloadBytes = 128 << 10

// Role is this VASP's side of a verification.
type Role string

// The two roles.
const (
	Originator  Role = "ORIGINATOR"  // funds leave us
	Beneficiary Role = "BENEFICIARY" // funds arrive
)

// Verification is one travel-rule exchange about one transfer.
type Verification struct {
	UUID                 string
	Role                 Role
	OriginatingVaspID    string
	BeneficiaryVaspID    string
	Network              string // canonical; empty while an asset on several networks has none named
	Asset                string // canonical symbol
	Amount               string // positive decimal, exact
	TradePrice           string
	TradeCurrency        string
	TradeISODateTime     string
	IsExceedingThreshold *bool
	OriginatorAddress    string
	BeneficiaryAddress   string
	Payload              json.RawMessage // {"version"?, "ivms101": {...}}: personal data
	TxHash               string
	Vout                 *int
	OrderedAt            *time.Time // when the tx report arrived
	CreatedAt            time.Time
	UpdatedAt            time.Time
	// Outcome is the beneficiary VASP's answer: PENDING until it arrives. Its Beneficiary (the
	// IVMS101 that VASP returned) is read only where the payload is.
	Outcome  Outcome
	ResultAt *time.Time
	// RequiredBeneficiaryInfo is the originator's comma-separated list of the beneficiary data
	// it asks for ("ACCOUNT_NUMBER,NATURAL_PERSON_NAME").
	RequiredBeneficiaryInfo string
	// DeadlineAt is when an originator stops waiting for the result (ENCLAVE_VERIFICATION_TIMEOUT).
	DeadlineAt *time.Time
	// ErrorReport is the cancellation either side sent, if any.
	ErrorReport *ErrorReport
	// PayloadError says why a list read with payloads left this one's out: its sealed payload
	// (or result) does not open with the keyset (sealed by a key it lacks, or altered). One such
	// row does not fail the page it is on.
	PayloadError string
}

// CounterpartyVaspID is the other VASP of the transfer: the one Chainalysis sees as the user.
func (v Verification) CounterpartyVaspID() string {
	if v.Role == Originator {
		return v.BeneficiaryVaspID
	}
	return v.OriginatingVaspID
}

// TxReported reports whether the originator's Transaction Result Report has arrived.
func (v Verification) TxReported() bool { return v.TxHash != "" }

// Draft is a verification as the VerifyVASP API sends it (DESIGN.md §7). Unknown fields are
// ignored; keyType and requiredBeneficiaryInfo are accepted and not used. Its shape is checked
// by its tags (internal/validate); the rules that need the network registry after them.
type Draft struct {
	BeneficiaryVaspID string `json:"beneficiaryVaspId" validate:"required,vaspid"`
	// BeneficiaryTravelAddress, when set, names the beneficiary VASP by a TRP Travel Address
	// instead of (or beside) beneficiaryVaspId: the verification then goes over TRP (DESIGN.md
	// §15). Without beneficiaryVaspId, the address's host names the counterparty.
	BeneficiaryTravelAddress string          `json:"beneficiaryTravelAddress,omitempty" validate:"omitempty,max=2048"`
	AssetInfo                AssetInfo       `json:"assetInfo"`
	Payload                  Payload         `json:"payload" validate:"required"`
	KeyType                  string          `json:"keyType,omitempty"`
	RequiredBeneficiaryInfo  json.RawMessage `json:"requiredBeneficiaryInfo,omitempty"`
	// IdempotencyKey, when set (the Idempotency-Key header of POST /v1/verifications), makes a
	// retry with the same Body answer the first verification.
	IdempotencyKey string `json:"-"`
	Body           []byte `json:"-"`
}

// Inbound is a verification a counterparty enclave sends (POST /peer/v1/verifications): the
// Draft plus the uuid its originator gave it and the originator's VASP id.
type Inbound struct {
	VerificationUUID  string `json:"verificationUuid" validate:"required,uuid"`
	OriginatingVaspID string `json:"originatingVaspId" validate:"required,vaspid"`
	Draft
}

// AssetInfo is the transfer's asset, network and amount. The lengths bound what a message
// about an unknown symbol or network can quote.
type AssetInfo struct {
	Symbol               string  `json:"symbol" validate:"required,max=64"`
	Network              string  `json:"network,omitempty" validate:"omitempty,max=64"`
	Amount               Decimal `json:"amount" validate:"required,decimal"`
	TradePrice           Decimal `json:"tradePrice,omitempty" validate:"omitempty,decimal0"`
	TradeCurrency        string  `json:"tradeCurrency,omitempty" validate:"omitempty,max=64"`
	TradeISODateTime     string  `json:"tradeISODateTime,omitempty" validate:"omitempty,rfc3339"`
	IsExceedingThreshold *bool   `json:"isExceedingThreshold,omitempty"`
}

// Payload is the IVMS101 payload as a VASP sends it: kept as the exact bytes received (sealed
// at rest, answered back as they came) and read for the wallet addresses the enclave uses.
type Payload struct {
	// RawMessage is embedded, so a problem with the payload as a whole is named "payload"
	// and the payload marshals as the bytes received. At most MaxPayloadBytes.
	json.RawMessage `validate:"max=131072"`
	IVMS101         *IVMS101 `json:"ivms101" validate:"required"`
}

// UnmarshalJSON keeps the bytes and reads the addresses; null leaves the payload missing.
func (p *Payload) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var shape struct {
		IVMS101 *IVMS101 `json:"ivms101"`
	}
	if err := json.Unmarshal(b, &shape); err != nil {
		return err
	}
	p.RawMessage, p.IVMS101 = append(json.RawMessage(nil), b...), shape.IVMS101
	return nil
}

// IVMS101 is the part of the IVMS101 message the enclave reads: the wallet addresses.
type IVMS101 struct {
	Originator *struct {
		AccountNumber []string `json:"accountNumber"` // [0], when there, is the originator's wallet
	} `json:"originator"`
	Beneficiary *struct {
		AccountNumber []string `json:"accountNumber" validate:"min=1,dive,required"` // [0] is the beneficiary's wallet
	} `json:"beneficiary" validate:"required"`
}

// Decimal is an amount as a VASP may send it: a JSON string ("1.25") or a JSON number (1.25),
// kept as the exact text written. Its format is checked by validation, which names the field.
type Decimal string

// UnmarshalJSON takes a string's content or a number's literal text; anything else is a type
// error that encoding/json reports with the field's path.
func (d *Decimal) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*d = Decimal(strings.TrimSpace(s))
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*d = Decimal(b)
	case string(b) == "null":
		*d = ""
	default:
		return &json.UnmarshalTypeError{Value: jsonKind(b), Type: reflect.TypeOf("")}
	}
	return nil
}

func jsonKind(b []byte) string {
	switch b[0] {
	case 't', 'f':
		return "bool"
	case '{':
		return "object"
	case '[':
		return "array"
	default:
		return "value"
	}
}

// String returns the decimal text.
func (d Decimal) String() string { return string(d) }

// resolve returns the verification a draft describes, its shape already checked, normalised:
// symbol as Chainalysis writes it, network canonical (resolved from the asset when it lives on
// one network only), addresses of that network. Field names in messages are the request's JSON
// paths.
func (d Draft) resolve(reg *network.Registry, role Role) (Verification, error) {
	v := Verification{Role: role, BeneficiaryVaspID: d.BeneficiaryVaspID, Amount: d.AssetInfo.Amount.String(),
		TradePrice: d.AssetInfo.TradePrice.String(), TradeCurrency: strings.ToUpper(strings.TrimSpace(d.AssetInfo.TradeCurrency)),
		TradeISODateTime: d.AssetInfo.TradeISODateTime, IsExceedingThreshold: d.AssetInfo.IsExceedingThreshold,
		BeneficiaryAddress: strings.TrimSpace(d.Payload.IVMS101.Beneficiary.AccountNumber[0]), Payload: d.Payload.RawMessage}
	asset, ok := reg.Asset(d.AssetInfo.Symbol)
	if !ok {
		return v, apperr.Bad("assetInfo.symbol: %q is not an asset Chainalysis KYT supports", d.AssetInfo.Symbol)
	}
	v.Asset = asset.Symbol
	if named := strings.TrimSpace(d.AssetInfo.Network); named != "" || !asset.MultiNetwork() {
		n, err := reg.Resolve(asset, named)
		if err != nil {
			return v, apperr.Bad("assetInfo.network: %s", err.Error())
		}
		v.Network = n.Name
	}
	if o := d.Payload.IVMS101.Originator; o != nil && len(o.AccountNumber) > 0 {
		v.OriginatorAddress = strings.TrimSpace(o.AccountNumber[0])
	}
	// Refused here, not later as an ERROR callback from Chainalysis: an address that cannot be
	// one of the transfer's network.
	candidates := reg.Candidates(asset, v.Network)
	for field, addr := range map[string]string{"payload.ivms101.beneficiary.accountNumber[0]": v.BeneficiaryAddress,
		"payload.ivms101.originator.accountNumber[0]": v.OriginatorAddress} {
		if addr != "" && !candidates.ValidAddress(addr) {
			return v, apperr.Bad("%s: %s is not an address on %s", field, validate.Quote(addr), candidates)
		}
	}
	return v, nil
}

// TxReport is the originator's Transaction Result Report. Whether txHash is a hash of the
// transfer's network is checked against the verification, after the shape.
type TxReport struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
	TxHash           string `json:"txHash" validate:"required,txhash"`
	Vout             *int   `json:"vout,omitempty" validate:"omitempty,min=0,max=2147483647"` // a uint32 on chain
}
