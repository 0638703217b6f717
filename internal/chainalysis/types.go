package chainalysis

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Direction values of a registered transfer.
const (
	Sent     = "sent"     // funds leave the VASP
	Received = "received" // funds arrive at the VASP
)

// RegisterTransferRequest is the body of POST /v2/users/{userId}/transfers. Amounts are
// json.Number so the exact decimal is sent as a JSON number, never through float64.
type RegisterTransferRequest struct {
	Network           string       `json:"network"`
	Asset             string       `json:"asset"`
	TransferReference string       `json:"transferReference"`
	Direction         string       `json:"direction"`
	TransferTimestamp string       `json:"transferTimestamp,omitempty"`
	AssetAmount       *json.Number `json:"assetAmount,omitempty"`
	OutputAddress     string       `json:"outputAddress,omitempty"`
	InputAddresses    []string     `json:"inputAddresses,omitempty"`
	AssetPrice        *json.Number `json:"assetPrice,omitempty"`
	AssetDenomination string       `json:"assetDenomination,omitempty"`
}

// Transfer is the answer of a transfer registration and of its summary. Pointer fields are
// null until Chainalysis has processed the transfer (UpdatedAt not nil).
type Transfer struct {
	UpdatedAt         *string      `json:"updatedAt"`
	Asset             string       `json:"asset"`
	Network           string       `json:"network"`
	TransferReference string       `json:"transferReference"`
	Tx                *string      `json:"tx"`
	Idx               *int         `json:"idx"`
	USDAmount         *json.Number `json:"usdAmount"`
	AssetAmount       *json.Number `json:"assetAmount"`
	Timestamp         *string      `json:"timestamp"`
	OutputAddress     *string      `json:"outputAddress"`
	ExternalID        string       `json:"externalId"`
}

// Processed reports whether Chainalysis has finished with the transfer.
func (t Transfer) Processed() bool { return t.UpdatedAt != nil }

// RegisterAttemptRequest is the body of POST /v2/users/{userId}/withdrawal-attempts.
type RegisterAttemptRequest struct {
	Network           string       `json:"network"`
	Asset             string       `json:"asset"`
	Address           string       `json:"address"`
	AttemptIdentifier string       `json:"attemptIdentifier"`
	AssetAmount       json.Number  `json:"assetAmount"`
	AttemptTimestamp  string       `json:"attemptTimestamp"`
	AssetPrice        *json.Number `json:"assetPrice,omitempty"`
	AssetDenomination string       `json:"assetDenomination,omitempty"`
}

// WithdrawalAttempt is the answer of an attempt registration and of its summary.
type WithdrawalAttempt struct {
	Network           string       `json:"network"`
	Asset             string       `json:"asset"`
	Address           string       `json:"address"`
	AttemptIdentifier string       `json:"attemptIdentifier"`
	AssetAmount       *json.Number `json:"assetAmount"`
	USDAmount         *json.Number `json:"usdAmount"`
	UpdatedAt         *string      `json:"updatedAt"`
	ExternalID        string       `json:"externalId"`
}

// Processed reports whether Chainalysis has finished with the attempt.
func (a WithdrawalAttempt) Processed() bool { return a.UpdatedAt != nil }

// Alerts is the answer of GET .../{externalId}/alerts.
type Alerts struct {
	Alerts []Alert `json:"alerts"`
}

// Alert is one KYT alert on a transfer or withdrawal attempt. ExternalID is the alert's own
// identifier, not the transfer's.
type Alert struct {
	AlertLevel   string      `json:"alertLevel"`
	Category     *string     `json:"category"`
	Service      *string     `json:"service"`
	ExternalID   string      `json:"externalId"`
	AlertAmount  json.Number `json:"alertAmount"`
	ExposureType string      `json:"exposureType"`
	CategoryID   *int        `json:"categoryId"`
}

// ParseTime reads the times KYT writes, which come with or without a zone and with any
// number of fractional digits ("2022-06-08T19:26:12.690702", "2022-06-13T13:26:16.778+00:00",
// "2021-01-12T06:11:30.000+00:00"). A time without a zone is UTC.
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999Z0700", "2006-01-02 15:04:05.999999999Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("chainalysis: unreadable time %q", s)
}
