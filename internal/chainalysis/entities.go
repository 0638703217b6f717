package chainalysis

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Endpoint names of the Entities API (Address Screening), used in errors and metric labels.
const (
	EndpointRegisterEntity = "register_entity"
	EndpointEntity         = "entity"
)

// Entity statuses. The API answers COMPLETE in practice; PENDING and IN_PROGRESS are legacy
// values an answer may still carry, and mean "ask again".
const (
	EntityComplete   = "COMPLETE"
	EntityPending    = "PENDING"
	EntityInProgress = "IN_PROGRESS"
)

// RegisterEntity registers an address with the Entities API (POST /v2/entities); the address
// must be registered before its risk can be read, and registering it again is harmless.
func (c *Client) RegisterEntity(ctx context.Context, address string) (RegisteredEntity, error) {
	var out RegisteredEntity
	err := c.do(ctx, EndpointRegisterEntity, http.MethodPost, "/v2/entities", RegisteredEntity{Address: address}, &out)
	return out, err
}

// Entity reads the risk assessment of a registered address (GET /v2/entities/{address}). An
// address Chainalysis does not know as registered answers an error for which
// IsEntityNotFound is true: register it again.
func (c *Client) Entity(ctx context.Context, address string) (Entity, error) {
	var out struct {
		Entity
		Message *string `json:"message"`
	}
	err := c.do(ctx, EndpointEntity, http.MethodGet, "/v2/entities/"+url.PathEscape(address), nil, &out)
	var e *Error
	switch {
	case errors.As(err, &e) && e.StatusCode >= 400 && e.StatusCode < 500 && entityNotFound(e.Message):
		e.NotFound, e.Transient = true, true
		return Entity{}, e
	case err != nil:
		return Entity{}, err
	case out.Message != nil && out.Address == "" && entityNotFound(*out.Message):
		// The reference documents show the message without saying which status carries it.
		return Entity{}, &Error{Endpoint: EndpointEntity, StatusCode: http.StatusOK, Message: truncate(*out.Message), Transient: true, NotFound: true}
	case out.Address == "":
		return Entity{}, &Error{Endpoint: EndpointEntity, StatusCode: http.StatusOK, Transient: true,
			Message: "answer 200 carries no address: not an Entities API answer"}
	}
	return out.Entity, nil
}

func entityNotFound(msg string) bool {
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(msg)), "entity not found")
}

// IsEntityNotFound reports whether err is the Entities API's "Entity not found. Please be sure
// to register the Entity.": the address is not (or no longer) registered.
func IsEntityNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NotFound
}

// RegisteredEntity is the body, and the answer, of POST /v2/entities.
type RegisteredEntity struct {
	Address string `json:"address"`
}

// Entity is the risk assessment of an address, every field of the Address Screening and
// Entities API references. Numbers stay json.Number, so what Chainalysis sent (51.537210,
// 0.0) is stored and passed on digit for digit; optional fields are pointers or omitempty so
// an absent field stays absent and a null stays null.
type Entity struct {
	Address                string                  `json:"address"`
	Risk                   *string                 `json:"risk"`
	RiskReason             *string                 `json:"riskReason"`
	Cluster                *Cluster                `json:"cluster"`
	AddressType            *string                 `json:"addressType,omitempty"`
	AddressIdentifications []AddressIdentification `json:"addressIdentifications"`
	Exposures              []Exposure              `json:"exposures"`
	Triggers               []Trigger               `json:"triggers"`
	Status                 string                  `json:"status"`
	PoolMetadata           *PoolMetadata           `json:"poolMetadata,omitempty"`
}

// Complete reports whether the assessment is final; a legacy PENDING or IN_PROGRESS is asked
// again.
func (e Entity) Complete() bool { return e.Status == "" || strings.EqualFold(e.Status, EntityComplete) }

// Cluster is the cluster an address belongs to.
type Cluster struct {
	Name     string `json:"name"`
	Category string `json:"category"`
}

// AddressIdentification is a Chainalysis identification of the address itself.
type AddressIdentification struct {
	Name        string `json:"name"`
	Category    string `json:"category"`
	Description string `json:"description"`
}

// Exposure is the address's exposure to a category, in USD.
type Exposure struct {
	Category     string      `json:"category"`
	Value        json.Number `json:"value"`
	ExposureType string      `json:"exposureType,omitempty"`
	Direction    string      `json:"direction,omitempty"`
}

// Trigger is one of the organisation's exposure rules the address triggered.
type Trigger struct {
	Category      string       `json:"category"`
	Percentage    json.Number  `json:"percentage"`
	Message       string       `json:"message"`
	RuleTriggered *RuleTrigger `json:"ruleTriggered"`
}

// RuleTrigger is the exposure rule a trigger met.
type RuleTrigger struct {
	Risk         string      `json:"risk"`
	MinThreshold json.Number `json:"minThreshold"`
	MaxThreshold json.Number `json:"maxThreshold"`
	ExposureType string      `json:"exposureType,omitempty"`
	Direction    string      `json:"direction,omitempty"`
}

// PoolMetadata describes a liquidity pool address.
type PoolMetadata struct {
	Fees   *json.Number `json:"fees"`
	Tokens []string     `json:"tokens"`
}
