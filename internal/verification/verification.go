// Package verification keeps the VASP's travel-rule verifications and their Transaction Result
// Reports. It owns the verifications table. A verification is created by this VASP's backend
// (we are ORIGINATOR) or by a counterparty enclave (we are BENEFICIARY); the originator later
// reports the on-chain txHash. Everything the KYT assessment needs to know about a transfer
// is read from here.
package verification

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/network"
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
// ignored; keyType and requiredBeneficiaryInfo are accepted and not used.
type Draft struct {
	VerificationUUID        string          `json:"verificationUuid"`  // peer requests only
	OriginatingVaspID       string          `json:"originatingVaspId"` // peer requests only
	BeneficiaryVaspID       string          `json:"beneficiaryVaspId"`
	AssetInfo               AssetInfo       `json:"assetInfo"`
	Payload                 json.RawMessage `json:"payload"`
	KeyType                 string          `json:"keyType,omitempty"`
	RequiredBeneficiaryInfo json.RawMessage `json:"requiredBeneficiaryInfo,omitempty"`
	// IdempotencyKey, when set (the Idempotency-Key header of POST /v1/verifications), makes a
	// retry with the same Body answer the first verification.
	IdempotencyKey string `json:"-"`
	Body           []byte `json:"-"`
}

// AssetInfo is the transfer's asset, network and amount.
type AssetInfo struct {
	Symbol               string  `json:"symbol"`
	Network              string  `json:"network,omitempty"`
	Amount               Decimal `json:"amount"`
	TradePrice           Decimal `json:"tradePrice,omitempty"`
	TradeCurrency        string  `json:"tradeCurrency,omitempty"`
	TradeISODateTime     string  `json:"tradeISODateTime,omitempty"`
	IsExceedingThreshold *bool   `json:"isExceedingThreshold,omitempty"`
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

// payloadShape is the part of the IVMS101 payload the enclave reads: the wallet addresses.
type payloadShape struct {
	IVMS101 *struct {
		Originator *struct {
			AccountNumber []string `json:"accountNumber"`
		} `json:"originator"`
		Beneficiary *struct {
			AccountNumber []string `json:"accountNumber"`
		} `json:"beneficiary"`
	} `json:"ivms101"`
}

var (
	decimalRe = regexp.MustCompile(`^[0-9]{1,30}(\.[0-9]{1,30})?$`)
	// A transaction hash is opaque but never holds a separator of transferReference.
	txHashRe = regexp.MustCompile(`^[^\s:]{1,200}$`)
)

// positiveDecimal reports whether s is a plain decimal string greater than zero.
func positiveDecimal(s string) bool {
	return decimalRe.MatchString(s) && strings.Trim(s, "0.") != ""
}

// validate checks a draft and returns the verification it describes, normalised: symbol as
// Chainalysis writes it, network canonical (resolved from the asset when it lives on one
// network only). Field names in messages are the request's JSON paths.
func (d Draft) validate(reg *network.Registry, role Role) (Verification, error) {
	v := Verification{Role: role, OriginatingVaspID: strings.TrimSpace(d.OriginatingVaspID),
		BeneficiaryVaspID: strings.TrimSpace(d.BeneficiaryVaspID)}
	if role == Beneficiary {
		id := strings.TrimSpace(d.VerificationUUID)
		if id == "" {
			return v, apperr.New(apperr.MissingVerificationUUID, "`verificationUuid` is required.")
		}
		u, err := ids.UUID("verificationUuid", id)
		if err != nil {
			return v, err
		}
		v.UUID = u
		if v.OriginatingVaspID == "" {
			return v, apperr.Bad("originatingVaspId is required")
		}
	}
	if v.BeneficiaryVaspID == "" {
		return v, apperr.Bad("beneficiaryVaspId is required")
	}
	if strings.TrimSpace(d.AssetInfo.Symbol) == "" {
		return v, apperr.Bad("assetInfo.symbol is required")
	}
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
	v.Amount = d.AssetInfo.Amount.String()
	if v.Amount == "" {
		return v, apperr.Bad("assetInfo.amount is required")
	}
	if !positiveDecimal(v.Amount) {
		return v, apperr.Bad("assetInfo.amount: want a positive decimal string such as \"1.25\", got %q", v.Amount)
	}
	if p := d.AssetInfo.TradePrice.String(); p != "" {
		if !decimalRe.MatchString(p) {
			return v, apperr.Bad("assetInfo.tradePrice: want a decimal string such as \"1820.17\", got %q", p)
		}
		v.TradePrice = p
	}
	v.TradeCurrency = strings.ToUpper(strings.TrimSpace(d.AssetInfo.TradeCurrency))
	if t := strings.TrimSpace(d.AssetInfo.TradeISODateTime); t != "" {
		if _, err := time.Parse(time.RFC3339Nano, t); err != nil {
			return v, apperr.Bad("assetInfo.tradeISODateTime: want an ISO 8601 date-time such as 2023-05-18T12:39:44Z, got %q", t)
		}
		v.TradeISODateTime = t
	}
	v.IsExceedingThreshold = d.AssetInfo.IsExceedingThreshold

	if len(bytes.TrimSpace(d.Payload)) == 0 || bytes.Equal(bytes.TrimSpace(d.Payload), []byte("null")) {
		return v, apperr.Bad("payload is required")
	}
	if len(d.Payload) > MaxPayloadBytes {
		return v, apperr.Bad("payload: at most %d bytes of IVMS101, got %d", MaxPayloadBytes, len(d.Payload))
	}
	var p payloadShape
	if err := json.Unmarshal(d.Payload, &p); err != nil {
		return v, apperr.Bad("payload: want an object with ivms101.originator and ivms101.beneficiary")
	}
	if p.IVMS101 == nil || p.IVMS101.Beneficiary == nil || len(p.IVMS101.Beneficiary.AccountNumber) == 0 ||
		strings.TrimSpace(p.IVMS101.Beneficiary.AccountNumber[0]) == "" {
		return v, apperr.Bad("payload.ivms101.beneficiary.accountNumber[0] is required (the beneficiary's wallet address)")
	}
	v.BeneficiaryAddress = strings.TrimSpace(p.IVMS101.Beneficiary.AccountNumber[0])
	if o := p.IVMS101.Originator; o != nil && len(o.AccountNumber) > 0 {
		v.OriginatorAddress = strings.TrimSpace(o.AccountNumber[0])
	}
	// Refused here, not later as an ERROR callback from Chainalysis: an address that cannot be
	// one of the transfer's network.
	candidates := reg.Candidates(asset, v.Network)
	for field, addr := range map[string]string{"payload.ivms101.beneficiary.accountNumber[0]": v.BeneficiaryAddress,
		"payload.ivms101.originator.accountNumber[0]": v.OriginatorAddress} {
		if addr != "" && !candidates.ValidAddress(addr) {
			return v, apperr.Bad("%s: %q is not an address on %s", field, addr, candidates)
		}
	}
	v.Payload = d.Payload
	return v, nil
}

// TxReport is the originator's Transaction Result Report.
type TxReport struct {
	VerificationUUID string `json:"verificationUuid"`
	TxHash           string `json:"txHash"`
	Vout             *int   `json:"vout,omitempty"`
}

func (r TxReport) validate() (string, error) {
	id := strings.TrimSpace(r.VerificationUUID)
	if id == "" {
		return "", apperr.New(apperr.MissingVerificationUUID, "`verificationUuid` is required.")
	}
	u, err := ids.UUID("verificationUuid", id)
	if err != nil {
		return "", err
	}
	if strings.TrimSpace(r.TxHash) == "" {
		return "", apperr.Bad("txHash is required")
	}
	if !txHashRe.MatchString(r.TxHash) {
		return "", apperr.Bad("txHash: want a transaction hash without spaces or ':' (at most 200 characters)")
	}
	if r.Vout != nil && (*r.Vout < 0 || *r.Vout > math.MaxInt32) {
		return "", apperr.Bad("vout: want an output index from 0 to %d, got %d", math.MaxInt32, *r.Vout)
	}
	return u, nil
}
