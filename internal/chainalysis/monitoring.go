package chainalysis

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Endpoint names of the KYT v1 calls monitoring makes.
const (
	EndpointAlerts = "alerts"
	EndpointUsers  = "users"
	EndpointUser   = "user"
)

// AlertsQuery filters GET /v1/alerts; zero values are left out.
type AlertsQuery struct {
	UserID            string
	Level             string // SEVERE, HIGH, MEDIUM or LOW
	Asset             string
	TransferReference string
	CreatedAtGTE      *time.Time
	CreatedAtLTE      *time.Time
	// Sort is "timestamp", "createdAt", "level" or "alertAmountUsd", optionally followed by
	// " asc" or " desc"; empty sorts by alertStatusCreatedAt, KYT's default.
	Sort          string
	Limit, Offset int
}

func (q AlertsQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"userId": q.UserID, "level": q.Level, "asset": q.Asset,
		"transferReference": q.TransferReference, "sort": q.Sort} {
		if s != "" {
			v.Set(k, s)
		}
	}
	for k, t := range map[string]*time.Time{"createdAt_gte": q.CreatedAtGTE, "createdAt_lte": q.CreatedAtLTE} {
		if t != nil {
			v.Set(k, t.UTC().Format("2006-01-02T15:04:05.000000Z"))
		}
	}
	return paged(v, q.Limit, q.Offset)
}

// paged adds the v1 pagination parameters to v; zero values are left out.
func paged(v url.Values, limit, offset int) url.Values {
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if offset > 0 {
		v.Set("offset", strconv.Itoa(offset))
	}
	return v
}

// withQuery is path with the query v, if any.
func withQuery(path string, v url.Values) string {
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// Alerts lists the organisation's alerts (GET /v1/alerts): those raised when a transfer was
// processed and those raised later by continuous monitoring, with their analyst status.
func (c *Client) Alerts(ctx context.Context, q AlertsQuery) (AlertPage, error) {
	var out AlertPage
	err := c.do(ctx, EndpointAlerts, http.MethodGet, withQuery("/v1/alerts", q.values()), nil, &out)
	return out, err
}

// AlertPage is one page of GET /v1/alerts.
type AlertPage struct {
	Total  int       `json:"total"`
	Limit  int       `json:"limit"`
	Offset int       `json:"offset"`
	Data   []V1Alert `json:"data"`
}

// V1Alert is one alert of GET /v1/alerts: every field of the v1 reference and of the KYT
// guide's example. AlertIdentifier is the same id as a v2 alert's externalId. Optional values
// are pointers (null stays null); numbers stay json.Number.
type V1Alert struct {
	AlertAmountUSD             json.Number     `json:"alertAmountUsd"`
	TransactionHash            *string         `json:"transactionHash"`
	Level                      string          `json:"level"`
	ExposureType               string          `json:"exposureType"`
	AlertStatus                string          `json:"alertStatus"`
	TransferReportedAt         *string         `json:"transferReportedAt"`
	AlertIdentifier            string          `json:"alertIdentifier"`
	Service                    *string         `json:"service"`
	AlertStatusCreatedAt       *string         `json:"alertStatusCreatedAt"`
	TransferReference          *string         `json:"transferReference"`
	UserID                     string          `json:"userId"`
	AlertStatusCreatedBy       *string         `json:"alertStatusCreatedBy"`
	CreatedAt                  string          `json:"createdAt"`
	TransferOutputAddress      *string         `json:"transferOutputAddress"`
	Category                   *string         `json:"category"`
	TransactionIndex           json.RawMessage `json:"transactionIndex"` // an integer in the examples, a String in the table
	Asset                      string          `json:"asset"`
	Direction                  string          `json:"direction"` // SENT or RECEIVED
	Timestamp                  *string         `json:"timestamp"`
	Rule                       *string         `json:"rule"`
	MinThreshold               *json.Number    `json:"minThreshold"`
	MaxThreshold               *json.Number    `json:"maxThreshold"`
	Valid                      *bool           `json:"valid,omitempty"`
	TransferCountWindow        json.RawMessage `json:"transferCountWindow,omitempty"`
	RuleAsset                  json.RawMessage `json:"ruleAsset,omitempty"`
	Period                     json.RawMessage `json:"period,omitempty"`
	WindowSize                 json.RawMessage `json:"windowSize,omitempty"`
	TransferredValuePercentage *json.Number    `json:"transferredValuePercentage,omitempty"`
	TransferCount              json.RawMessage `json:"transferCount,omitempty"`
	AlertType                  *string         `json:"alertType,omitempty"` // TRANSFER or WITHDRAWAL_ATTEMPT
	Validity                   *string         `json:"validity,omitempty"`
	CategoryID                 *int            `json:"categoryId,omitempty"`
}

// Users lists the organisation's KYT users with their risk score (GET /v1/users).
func (c *Client) Users(ctx context.Context, limit, offset int) (UserPage, error) {
	var out UserPage
	err := c.do(ctx, EndpointUsers, http.MethodGet, withQuery("/v1/users", paged(url.Values{}, limit, offset)), nil, &out)
	return out, err
}

// User reads one KYT user (GET /v1/users/{userId}): its risk score — the highest level of its
// alerts not dismissed — and its exposure. An unknown user is a permanent *Error with
// StatusCode 404.
func (c *Client) User(ctx context.Context, userID string) (User, error) {
	var out User
	err := c.do(ctx, EndpointUser, http.MethodGet, "/v1/users/"+url.PathEscape(userID), nil, &out)
	return out, err
}

// UserPage is one page of GET /v1/users.
type UserPage struct {
	Total  int    `json:"total"`
	Limit  int    `json:"limit"`
	Offset int    `json:"offset"`
	Data   []User `json:"data"`
}

// User is a KYT user. CreationDate and ExposureDetails come only with GET /v1/users/{userId}.
type User struct {
	UserID           string           `json:"userId"`
	Score            string           `json:"score"` // legacy: green, amber, red
	LastActivity     *string          `json:"lastActivity"`
	ScoreUpdatedDate *string          `json:"scoreUpdatedDate"`
	RiskScore        string           `json:"riskScore"` // LOW, MEDIUM, HIGH, SEVERE
	CreationDate     *string          `json:"creationDate,omitempty"`
	ExposureDetails  []ExposureDetail `json:"exposureDetails,omitempty"`
}

// ExposureDetail is the user's exposure to one cluster, in USD.
type ExposureDetail struct {
	Cluster                  *Cluster    `json:"cluster"`
	SentIndirectExposure     json.Number `json:"sentIndirectExposure"`
	SentDirectExposure       json.Number `json:"sentDirectExposure"`
	ReceivedIndirectExposure json.Number `json:"receivedIndirectExposure"`
	ReceivedDirectExposure   json.Number `json:"receivedDirectExposure"`
}
