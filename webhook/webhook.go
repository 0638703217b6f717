// Package webhook is what a VASP's backend imports to receive the enclave's callbacks: it
// verifies a callback's Standard Webhooks signature and decodes its body: the VerifyVASP
// CHAINALYSIS_KYT_RESULT shape (KYTResult, which also reads CHAINALYSIS_KYT_ALERT, alerts KYT
// raised later) and CHAINALYSIS_ADDRESS_SCREENING_RESULT (AddressScreeningResult). The enclave
// itself signs callbacks and peer requests with the same code, so both sides agree by
// construction.
//
// A receiver should treat the webhook-id header (Callback.ID) as an idempotency key: the
// enclave delivers at least once and may deliver the same callback twice.
package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Header names of the Standard Webhooks signature.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is how far a callback's timestamp may be from the receiver's clock.
const Tolerance = 5 * time.Minute

// MaxBodyBytes caps the body Parse reads.
const MaxBodyBytes = 1 << 20

// Callback types.
const (
	TypeKYTResult = "CHAINALYSIS_KYT_RESULT"
	// TypeAddressScreeningResult reports an address screening's terminal state.
	TypeAddressScreeningResult = "CHAINALYSIS_ADDRESS_SCREENING_RESULT"
	// TypeKYTAlert reports alerts Chainalysis raised on a processed KYT assessment later
	// (monitoring): the assessment as it stands, and only the new alerts.
	TypeKYTAlert = "CHAINALYSIS_KYT_ALERT"
	// TypeVerificationResult tells the originator's backend the beneficiary VASP's answer to a
	// verification: exactly one per verification.
	TypeVerificationResult = "VERIFICATION_RESULT"
	// TypeTxReport tells the beneficiary's backend the originator's on-chain txHash.
	TypeTxReport = "TX_REPORT"
	// TypeErrorReport tells a backend that the counterparty cancelled the transfer.
	TypeErrorReport = "ERROR_REPORT"
	// TypeVerificationRequest asks the beneficiary's backend to answer an inbound verification
	// through POST /v1/verifications/{verificationUuid}/result (no Verify User API is configured).
	TypeVerificationRequest = "VERIFICATION_REQUEST"
)

// ErrSignature means the callback was not signed with the secret, was tampered with, or is
// older (or newer) than Tolerance.
var ErrSignature = errors.New("webhook: signature does not verify")

// Sign returns the three signature headers for body, sent as message id at time ts, with the
// secret "whsec_<base64>".
func Sign(secret, id string, ts time.Time, body []byte) (http.Header, error) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, errors.New("webhook: the secret must be whsec_ followed by base64")
	}
	sig, err := wh.Sign(id, ts, body)
	if err != nil {
		return nil, fmt.Errorf("webhook: sign: %w", err)
	}
	h := http.Header{}
	h.Set(HeaderID, id)
	h.Set(HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(HeaderSignature, sig)
	return h, nil
}

// Verify checks the signature headers of body with the secret "whsec_<base64>". It returns
// ErrSignature (wrapped with the reason) when they do not verify.
func Verify(secret string, header http.Header, body []byte) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return errors.New("webhook: the secret must be whsec_ followed by base64")
	}
	if err := wh.Verify(body, header); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// Callback is a verified callback.
type Callback struct {
	// ID is the webhook-id: the same on every delivery of one callback.
	ID           string          `json:"-"`
	CallbackType string          `json:"callbackType"`
	Data         json.RawMessage `json:"data"`
}

// Parse reads r's body, verifies its signature with secret and decodes it.
func Parse(secret string, r *http.Request) (Callback, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return Callback{}, fmt.Errorf("webhook: read body: %w", err)
	}
	if len(body) > MaxBodyBytes {
		return Callback{}, fmt.Errorf("webhook: body larger than %d bytes", MaxBodyBytes)
	}
	return ParseBody(secret, r.Header, body)
}

// ParseBody is Parse for a body already read.
func ParseBody(secret string, header http.Header, body []byte) (Callback, error) {
	if err := Verify(secret, header, body); err != nil {
		return Callback{}, err
	}
	var c Callback
	if err := json.Unmarshal(body, &c); err != nil {
		return Callback{}, fmt.Errorf("webhook: body is not a callback: %w", err)
	}
	c.ID = header.Get(HeaderID)
	return c, nil
}

// KYTResult decodes the data of a CHAINALYSIS_KYT_RESULT or CHAINALYSIS_KYT_ALERT callback
// (the same shape: the assessment and alerts, only the new ones in an alert callback).
func (c Callback) KYTResult() (KYTResultData, error) {
	var d KYTResultData
	if c.CallbackType != TypeKYTResult && c.CallbackType != TypeKYTAlert {
		return d, fmt.Errorf("webhook: callback is %s, not %s or %s", c.CallbackType, TypeKYTResult, TypeKYTAlert)
	}
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return d, fmt.Errorf("webhook: %s data: %w", c.CallbackType, err)
	}
	return d, nil
}

// AddressScreeningResult decodes the data of a CHAINALYSIS_ADDRESS_SCREENING_RESULT callback.
func (c Callback) AddressScreeningResult() (ScreeningResultData, error) {
	var d ScreeningResultData
	if c.CallbackType != TypeAddressScreeningResult {
		return d, fmt.Errorf("webhook: callback is %s, not %s", c.CallbackType, TypeAddressScreeningResult)
	}
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return d, fmt.Errorf("webhook: %s data: %w", TypeAddressScreeningResult, err)
	}
	return d, nil
}

// ScreeningResultData is the data of a CHAINALYSIS_ADDRESS_SCREENING_RESULT callback. GET
// /v1/risk-assessment/chainalysis-address-screening/{requestId} answers the same object.
type ScreeningResultData struct {
	VerificationUUID string                  `json:"verificationUuid"`
	RiskAssessment   ScreeningRiskAssessment `json:"riskAssessment"`
}

// ScreeningRiskAssessment holds one address screening.
type ScreeningRiskAssessment struct {
	ChainalysisAddressScreening AddressScreening `json:"chainalysisAddressScreening"`
}

// AddressScreening is one screening of the counterparty's wallet address. Risk and the fields
// after it are Chainalysis's own (Entities API names and values: risk Severe, High, Medium or
// Low), null until PROCESSED; cluster, addressIdentifications, exposures and triggers are
// passed on as Chainalysis sent them.
type AddressScreening struct {
	RequestID              string          `json:"requestId"`
	CounterpartyVaspID     string          `json:"counterpartyVaspId"`
	Address                string          `json:"address"`
	Status                 string          `json:"status"`
	Risk                   *string         `json:"risk"`
	RiskReason             *string         `json:"riskReason"`
	Cluster                json.RawMessage `json:"cluster"`
	AddressType            *string         `json:"addressType"`
	AddressIdentifications json.RawMessage `json:"addressIdentifications"`
	Exposures              json.RawMessage `json:"exposures"`
	Triggers               json.RawMessage `json:"triggers"`
	PoolMetadata           json.RawMessage `json:"poolMetadata,omitempty"`
	CreatedAt              string          `json:"createdAt"`
	AssessedAt             *string         `json:"assessedAt"`
	Error                  *KYTError       `json:"error,omitempty"` // status ERROR only
}

// Final reports whether the screening is in its last state, PROCESSED or ERROR.
func (a AddressScreening) Final() bool {
	return a.Status == StatusProcessed || a.Status == StatusError
}

// KYTResultData is the data of a CHAINALYSIS_KYT_RESULT callback, field names verbatim from the
// VerifyVASP risk-assessment page. GET /v1/risk-assessment/chainalysis-kyt/{requestId}
// answers the same object.
type KYTResultData struct {
	VerificationUUID string         `json:"verificationUuid"`
	RiskAssessment   RiskAssessment `json:"riskAssessment"`
}

// RiskAssessment holds one KYT assessment and its alerts.
type RiskAssessment struct {
	ChainalysisKYT       ChainalysisKYT `json:"chainalysisKYT"`
	ChainalysisKYTAlerts []KYTAlert     `json:"chainalysisKYTAlerts"`
}

// Assessment statuses.
const (
	StatusPending    = "PENDING"
	StatusRegistered = "REGISTERED"
	StatusProcessed  = "PROCESSED"
	StatusError      = "ERROR"
)

// ChainalysisKYT is one assessment. Optional values are null until known: usdPrice,
// externalId (not issued if registration failed), alertCount (until PROCESSED), assessedAt.
type ChainalysisKYT struct {
	RequestID          string    `json:"requestId"`
	CounterpartyVaspID string    `json:"counterpartyVaspId"`
	APIType            string    `json:"apiType"` // ATTEMPT or TRANSFER
	UserID             string    `json:"userId"`
	Direction          string    `json:"direction"` // OUTGOING or INCOMING
	Network            string    `json:"network"`
	Asset              string    `json:"asset"`
	Amount             string    `json:"amount"`
	USDPrice           *string   `json:"usdPrice"`
	TransferRef        *string   `json:"transferRef,omitempty"` // TRANSFER only
	OutputAddress      string    `json:"outputAddress"`
	Timestamp          *string   `json:"timestamp"`
	ExternalID         *string   `json:"externalId"`
	Status             string    `json:"status"`
	AlertCount         *int      `json:"alertCount"`
	CreatedAt          string    `json:"createdAt"`
	AssessedAt         *string   `json:"assessedAt"`
	Error              *KYTError `json:"error,omitempty"` // status ERROR only
}

// Final reports whether the assessment is in its last state, PROCESSED or ERROR: the callback
// a backend acts on. (A REGISTERED callback, sent only when the enclave is asked to, may arrive
// after the final one.)
func (k ChainalysisKYT) Final() bool {
	return k.Status == StatusProcessed || k.Status == StatusError
}

// KYTError says why an assessment ended in ERROR: Chainalysis refused it (code KYT-<reason>,
// with Chainalysis's own message) or it did not finish in time (KYT-TIMEOUT).
type KYTError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// KYTAlert is one Chainalysis KYT alert.
type KYTAlert struct {
	CounterpartyVaspID string  `json:"counterpartyVaspId"`
	ExternalID         string  `json:"externalId"`
	Direction          string  `json:"direction"`
	AlertID            string  `json:"alertId"`
	AlertLevel         string  `json:"alertLevel"` // LOW, MEDIUM, HIGH, SEVERE
	EntityCategory     *string `json:"entityCategory"`
	ServiceName        *string `json:"serviceName"`
	ExposureType       string  `json:"exposureType"` // DIRECT or INDIRECT
	AlertAmount        string  `json:"alertAmount"`
	CreatedAt          string  `json:"createdAt"`
	// Source is ASSESSMENT (read when the assessment was processed) or MONITORING (raised by
	// Chainalysis later and pulled in by the monitoring sync).
	Source string `json:"source"`
	// AlertStatus is the analysts' status in KYT (Unreviewed, In Review, Flagged, Dismissed) as
	// the monitoring sync last saw it, changed at AlertStatusCreatedAt; null until seen.
	AlertStatus          *string `json:"alertStatus"`
	AlertStatusCreatedAt *string `json:"alertStatusCreatedAt"`
}

// Alert sources.
const (
	SourceAssessment = "ASSESSMENT"
	SourceMonitoring = "MONITORING"
)

// VerificationResultData is the data of a VERIFICATION_RESULT callback. VerifyVASP's pages name
// the result both verificationResult and result; both carry it.
type VerificationResultData struct {
	VerificationUUID   string  `json:"verificationUuid"`
	VerificationResult string  `json:"verificationResult"`
	Result             string  `json:"result"`
	Reason             *string `json:"reason"`
	Message            *string `json:"message"`
	// IVMS101 holds the beneficiary data the beneficiary VASP returned, if any.
	IVMS101 *struct {
		Beneficiary json.RawMessage `json:"beneficiary"`
	} `json:"ivms101,omitempty"`
}

// TxReportData is the data of a TX_REPORT callback.
type TxReportData struct {
	VerificationUUID string `json:"verificationUuid"`
	TxHash           string `json:"txHash"`
	Vout             *int   `json:"vout"`
}

// ErrorReportData is the data of an ERROR_REPORT callback.
type ErrorReportData struct {
	VerificationUUID string `json:"verificationUuid"`
	Result           string `json:"result"`
	Reason           string `json:"reason"`
	Message          string `json:"message"`
}

// VerificationRequestData is the data of a VERIFICATION_REQUEST callback: the verification as
// GET /v1/verifications/{uuid} shows it, without its payload. Fields not listed here are in
// Callback.Data.
type VerificationRequestData struct {
	VerificationUUID        string  `json:"verificationUuid"`
	Role                    string  `json:"role"`
	OriginatingVaspID       string  `json:"originatingVaspId"`
	BeneficiaryVaspID       string  `json:"beneficiaryVaspId"`
	BeneficiaryAddress      string  `json:"beneficiaryAddress"`
	RequiredBeneficiaryInfo *string `json:"requiredBeneficiaryInfo"`
	Result                  string  `json:"result"`
}

// VerificationResult decodes the data of a VERIFICATION_RESULT callback.
func (c Callback) VerificationResult() (VerificationResultData, error) {
	var d VerificationResultData
	return d, c.decode(TypeVerificationResult, &d)
}

// TxReport decodes the data of a TX_REPORT callback.
func (c Callback) TxReport() (TxReportData, error) {
	var d TxReportData
	return d, c.decode(TypeTxReport, &d)
}

// ErrorReport decodes the data of an ERROR_REPORT callback.
func (c Callback) ErrorReport() (ErrorReportData, error) {
	var d ErrorReportData
	return d, c.decode(TypeErrorReport, &d)
}

// VerificationRequest decodes the data of a VERIFICATION_REQUEST callback.
func (c Callback) VerificationRequest() (VerificationRequestData, error) {
	var d VerificationRequestData
	return d, c.decode(TypeVerificationRequest, &d)
}

func (c Callback) decode(typ string, v any) error {
	if c.CallbackType != typ {
		return fmt.Errorf("webhook: callback is %s, not %s", c.CallbackType, typ)
	}
	if err := json.Unmarshal(c.Data, v); err != nil {
		return fmt.Errorf("webhook: %s data: %w", typ, err)
	}
	return nil
}
