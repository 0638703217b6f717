// Package trp is the wire of OpenVASP's Travel Rule Protocol v3 (DESIGN.md §15): its headers,
// its bodies — the inquiry, the resolution (approved, rejected, or the version that says "later")
// and the confirmation (txid or canceled) — and the strict reading of the ones a counterparty
// sends, which are outside input. It knows nothing of verifications' rows or of HTTP routing:
// internal/exchange translates these bodies to the one exchange state machine, and api serves
// them.
//
// Field names are the specification's, case and all ("IVMS101", "originatingVASP",
// "slip0044"). Amounts are decimal text end to end: read from a JSON number or a string
// without going through a float, written as a JSON number with exactly the digits stored.
package trp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/strictjson"
	"github.com/travelrule/enclave/internal/traddr"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
)

// Headers and their values, as the specification names them.
const (
	HeaderAPIVersion        = "api-version"
	HeaderRequestIdentifier = "request-identifier"
	HeaderAPIExtensions     = "api-extensions"
	// APIVersion is the version this enclave sends; it accepts any 3.x.
	APIVersion  = "3.1.0"
	ContentType = "application/json; charset=utf-8"
	// MaxBodyBytes bounds a TRP body read: an inquiry of a few persons is a few kB; the
	// verification's own payload bound applies after.
	MaxBodyBytes = 256 << 10
)

// Header returns the headers of every TRP request about one transfer, requestID being its
// request-identifier (the same on every retry).
func Header(requestID string) http.Header {
	return http.Header{
		HeaderAPIVersion:        {APIVersion},
		HeaderRequestIdentifier: {requestID},
		"Content-Type":          {ContentType},
	}
}

// CheckRequest checks a TRP request's method and headers as TRP implementations do (TRISA's
// openvasp.APIChecks): a method other than POST is 405, a missing or non-3.x api-version or a
// missing request-identifier 400, a content-type other than JSON 415. It returns the status
// and the problem, naming the header, or 0.
func CheckRequest(r *http.Request) (int, error) {
	switch {
	case r.Method != http.MethodPost:
		return http.StatusMethodNotAllowed, apperr.New(apperr.MethodNotAllowed, "method: a TRP request is a POST, got %s", validate.Quote(r.Method))
	case !Version3(r.Header.Get(HeaderAPIVersion)):
		return http.StatusBadRequest, apperr.Bad("%s: want %s (any 3.x), got %s", HeaderAPIVersion, APIVersion, validate.Quote(r.Header.Get(HeaderAPIVersion)))
	case strings.TrimSpace(r.Header.Get(HeaderRequestIdentifier)) == "":
		return http.StatusBadRequest, apperr.Bad("%s: required (a UUID naming the transfer)", HeaderRequestIdentifier)
	case len(r.Header.Get(HeaderRequestIdentifier)) > 128:
		return http.StatusBadRequest, apperr.Bad("%s: at most 128 characters", HeaderRequestIdentifier)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return http.StatusUnsupportedMediaType, apperr.New("UNSUPPORTED-MEDIA-TYPE", "content-type: want %s, got %s", ContentType, validate.Quote(ct))
		}
	}
	return 0, nil
}

// Version3 reports whether v is a 3.x version, which this enclave speaks.
func Version3(v string) bool {
	v = strings.TrimSpace(v)
	return v == "3" || strings.HasPrefix(v, "3.")
}

// Asset names the asset of a transfer: a SLIP-0044 coin type or a Digital Token Identifier.
type Asset struct {
	SLIP0044 *Coin  `json:"slip0044,omitempty"`
	DTI      string `json:"dti,omitempty"`
}

// Coin is a SLIP-0044 coin type. The specification writes it as the integer; TRISA's library
// (and so Envoy) writes and reads only the coin's symbol as a string ("ETH"). It is read from
// either (or a numeric string), and written as the symbol where the enclave knows one, so that
// the open-source implementations read it.
type Coin int

// UnmarshalJSON reads 60, "60" or "ETH".
func (c *Coin) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*c = Coin(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return &json.UnmarshalTypeError{Value: "value", Type: reflect.TypeOf(0), Field: "asset.slip0044"}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		*c = Coin(n)
		return nil
	}
	n, ok := CoinType(strings.ToUpper(strings.TrimSpace(s)))
	if !ok {
		return apperr.Bad("asset.slip0044: %s is not a coin this enclave knows", validate.Quote(s))
	}
	*c = Coin(n)
	return nil
}

// MarshalJSON writes the coin's symbol, or the integer for a coin without a known symbol.
func (c Coin) MarshalJSON() ([]byte, error) {
	if s, ok := Symbol(int(c)); ok {
		return json.Marshal(s)
	}
	return json.Marshal(int(c))
}

// Inquiry is the originator's question (the POST to the Travel Address). IVMS101 is kept as
// the bytes received: personal data, which only the sealed verification payload holds.
type Inquiry struct {
	Asset      Asset                `json:"asset"`
	Amount     verification.Decimal `json:"amount"`
	Callback   string               `json:"callback"`
	IVMS101    json.RawMessage      `json:"IVMS101"`
	Extensions json.RawMessage      `json:"extensions,omitempty"`
}

// Approval is a beneficiary's yes: the address to pay and where to confirm the transfer.
type Approval struct {
	Address  string `json:"address"`
	Callback string `json:"callback"`
}

// Resolution is a beneficiary's answer: exactly one of Version (decision later, POSTed to the
// inquiry's callback), Approved or Rejected (a human-readable reason).
type Resolution struct {
	Version  string    `json:"version,omitempty"`
	Approved *Approval `json:"approved,omitempty"`
	Rejected string    `json:"rejected,omitempty"`
}

// Confirmation is what the originator sends to the approved callback: exactly one of TxID
// (the transfer is on chain) or Canceled (a human-readable reason).
type Confirmation struct {
	TxID     string `json:"txid,omitempty"`
	Canceled string `json:"canceled,omitempty"`
}

// MaxReasonLen bounds a rejected or canceled text kept as a verification's message.
const MaxReasonLen = 1000

// ReadInquiry reads an inquiry a counterparty sent. Problems are BAD-REQUEST naming the field:
// a body that is not one JSON object, keys given twice, an asset without a coin type, an amount
// that is not a positive decimal, a callback that is not a URL a request may go to (https, or
// http on a loopback host), an IVMS101 that is not an object with a beneficiary.
func ReadInquiry(body []byte) (Inquiry, error) {
	var in Inquiry
	if err := read(body, &in, "{asset, amount, callback, IVMS101}"); err != nil {
		return in, err
	}
	switch {
	case in.Asset.SLIP0044 == nil && in.Asset.DTI == "":
		return in, apperr.Bad("asset: required, with slip0044 (a SLIP-0044 coin type) or dti")
	case in.Asset.SLIP0044 != nil && *in.Asset.SLIP0044 < 0:
		return in, apperr.Bad("asset.slip0044: a coin type is 0 or more, got %d", *in.Asset.SLIP0044)
	case len(in.Asset.DTI) > 64:
		return in, apperr.Bad("asset.dti: at most 64 characters")
	case in.Amount == "":
		return in, apperr.Bad("amount: required (a number or a decimal string)")
	case !validate.PositiveDecimal(string(in.Amount)):
		return in, apperr.Bad("amount: want a positive decimal, got %s", validate.Quote(string(in.Amount)))
	}
	if err := CheckCallback("callback", in.Callback); err != nil {
		return in, err
	}
	var ivms map[string]json.RawMessage
	if err := json.Unmarshal(in.IVMS101, &ivms); err != nil || ivms == nil {
		return in, apperr.Bad("IVMS101: required, an object {originator, beneficiary, originatingVASP, beneficiaryVASP}")
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(ivms["beneficiary"], &b); err != nil || b == nil {
		return in, apperr.Bad("IVMS101.beneficiary: required, an object")
	}
	return in, nil
}

// ReadResolution reads a beneficiary's answer: exactly one of version (a 3.x), approved (with
// an address and a callback URL) or rejected.
func ReadResolution(body []byte) (Resolution, error) {
	var r Resolution
	if err := read(body, &r, `{"approved": {address, callback}}, {"rejected": reason} or {"version"}`); err != nil {
		return r, err
	}
	n := 0
	for _, set := range []bool{r.Version != "", r.Approved != nil, r.Rejected != ""} {
		if set {
			n++
		}
	}
	switch {
	case n != 1:
		return r, apperr.Bad("request body: want exactly one of approved, rejected and version")
	case r.Version != "" && !Version3(r.Version):
		return r, apperr.Bad("version: want a 3.x, got %s", validate.Quote(r.Version))
	case r.Approved != nil && strings.TrimSpace(r.Approved.Address) == "":
		return r, apperr.Bad("approved.address: required")
	case r.Approved != nil && len(r.Approved.Address) > 256:
		return r, apperr.Bad("approved.address: at most 256 characters")
	}
	if r.Approved != nil {
		if err := CheckCallback("approved.callback", r.Approved.Callback); err != nil {
			return r, err
		}
	}
	r.Rejected = Clip(r.Rejected)
	return r, nil
}

// ReadConfirmation reads an originator's confirmation: exactly one of txid and canceled.
func ReadConfirmation(body []byte) (Confirmation, error) {
	var c Confirmation
	if err := read(body, &c, `{"txid"} or {"canceled"}`); err != nil {
		return c, err
	}
	switch {
	case (c.TxID == "") == (c.Canceled == ""):
		return c, apperr.Bad("request body: want exactly one of txid and canceled")
	case len(c.TxID) > 256:
		return c, apperr.Bad("txid: at most 256 characters")
	}
	c.Canceled = Clip(c.Canceled)
	return c, nil
}

// CheckCallback checks a URL a counterparty gave for us to POST to: https, or http on a
// loopback host; no credentials, bounded.
func CheckCallback(field, raw string) error {
	switch {
	case strings.TrimSpace(raw) == "":
		return apperr.Bad("%s: required (the URL to POST the answer to)", field)
	case len(raw) > 2048:
		return apperr.Bad("%s: at most 2048 characters", field)
	}
	if err := traddr.CheckURL(raw); err != nil {
		return apperr.Bad("%s: %s", field, err.Error())
	}
	return nil
}

// read decodes one JSON object strictly (one reading: no key twice, none in another case).
func read(body []byte, v any, shape string) error {
	if !json.Valid(body) || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return apperr.Bad("request body: want one JSON object %s", shape)
	}
	if err := strictjson.Unmarshal(body, v); err != nil {
		if _, ok := apperr.As(err); ok {
			return err
		}
		var te *json.UnmarshalTypeError
		if ok := asType(err, &te); ok && te.Field != "" {
			return apperr.Bad("%s: wrong type (got a JSON %s)", te.Field, te.Value)
		}
		return apperr.Bad("request body: want %s", shape)
	}
	return nil
}

func asType(err error, te **json.UnmarshalTypeError) bool {
	e, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = e
	}
	return ok
}

// Clip keeps a free-text reason to MaxReasonLen bytes, on a rune boundary: a verification's
// message is at most that long.
func Clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= MaxReasonLen {
		return s
	}
	s = s[:MaxReasonLen]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// Amount writes a stored decimal as the JSON number TRP implementations read (TRISA's reads a
// number only), with exactly its digits.
func Amount(decimal string) json.RawMessage { return json.RawMessage(decimal) }

// String keeps fmt from printing IVMS101 bytes: an Inquiry in a log line shows its shape only.
func (in Inquiry) String() string {
	return fmt.Sprintf("trp.Inquiry{asset:%v amount:%s callback:(set) IVMS101:(%d bytes)}", in.Asset, in.Amount, len(in.IVMS101))
}
