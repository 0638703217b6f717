// Package vaspapi is the client of this VASP's own backend API that the enclave calls (DESIGN.md
// §12, §13): Verify User, asked about every inbound verification. Each call is signed and
// authorised like a callback (Standard Webhooks with ENCLAVE_CALLBACK_SECRET, Bearer
// ENCLAVE_CALLBACK_TOKEN), bounded by ENCLAVE_VASP_API_TIMEOUT, and never follows a redirect.
package vaspapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
)

// DefaultTimeout bounds one call (ENCLAVE_VASP_API_TIMEOUT): VerifyVASP gives Verify User 5 s.
const DefaultTimeout = 5 * time.Second

// Config is where the VASP's API is and how to sign for it.
type Config struct {
	// VerifyUserURL is the Verify User API (ENCLAVE_VERIFY_USER_URL); empty: not offered.
	VerifyUserURL string
	// Token and Secret are the callback's (ENCLAVE_CALLBACK_TOKEN, ENCLAVE_CALLBACK_SECRET).
	Token, Secret string
	// Timeout bounds one call; default DefaultTimeout.
	Timeout    time.Duration
	HTTPClient *http.Client
}

// Client calls the VASP's API.
type Client struct {
	cfg  Config
	post *signedhttp.Client
}

// New returns a Client.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Client{cfg: cfg, post: signedhttp.New(cfg.HTTPClient, cfg.Timeout)}
}

// Timeout bounds one call; 0 without a client.
func (c *Client) Timeout() time.Duration {
	if c == nil {
		return 0
	}
	return c.cfg.Timeout
}

// VerifiesUsers reports whether a Verify User API is configured.
func (c *Client) VerifiesUsers() bool { return c != nil && c.cfg.VerifyUserURL != "" }

// verifyUserRequest is what the Verify User API receives: the verification, with the
// originator's and beneficiary's IVMS101 as the originator sent them.
type verifyUserRequest struct {
	VerificationUUID        string                 `json:"verificationUuid"`
	OriginatingVaspID       string                 `json:"originatingVaspId"`
	BeneficiaryVaspID       string                 `json:"beneficiaryVaspId"`
	AssetInfo               verification.AssetView `json:"assetInfo"`
	RequiredBeneficiaryInfo string                 `json:"requiredBeneficiaryInfo,omitempty"`
	Version                 json.RawMessage        `json:"version,omitempty"`
	IVMS101                 json.RawMessage        `json:"ivms101"`
}

// Answer is the VASP's answer to Verify User (and the body of
// POST /v1/verifications/{uuid}/result, which is the same answer given later).
type Answer struct {
	Result string `json:"result" validate:"required_without=VerificationResult,omitempty,oneof=VERIFIED DENIED UNKNOWN ERROR PENDING"`
	// VerificationResult is the name some of VerifyVASP's pages give the result.
	VerificationResult string `json:"verificationResult" validate:"omitempty,oneof=VERIFIED DENIED UNKNOWN ERROR PENDING"`
	Reason             string `json:"reason" validate:"max=64"`
	Message            string `json:"message" validate:"max=1000"`
	IVMS101            struct {
		Beneficiary json.RawMessage `json:"beneficiary"`
	} `json:"ivms101"`
}

// Outcome returns the answer as a result, whichever name the result was given under.
func (a Answer) Outcome() verification.Outcome {
	r := a.Result
	if r == "" {
		r = a.VerificationResult
	}
	o := verification.Outcome{Result: verification.Result(r), Reason: strings.TrimSpace(a.Reason), Message: a.Message}
	if b := strings.TrimSpace(string(a.IVMS101.Beneficiary)); b != "" && b != "null" {
		o.Beneficiary = a.IVMS101.Beneficiary
	}
	if o.Result == verification.Verified && o.Reason == "" {
		o.Reason = verification.ReasonOK
	}
	return o
}

// Failure is a call that did not give a usable answer; it is worth trying again (DESIGN.md §12:
// even an answer the enclave cannot read is retried like a 5xx, and logged with its status).
type Failure struct {
	Status     int
	RetryAfter time.Duration
	Reason     string
}

func (f *Failure) Error() string { return "Verify User API: " + f.Reason }

// VerifyUser asks the VASP about inbound verification v, read with its payload. It returns
// the answer (PENDING: a person reviews it) or a *Failure.
func (c *Client) VerifyUser(ctx context.Context, v verification.Verification) (verification.Outcome, error) {
	var p struct {
		Version json.RawMessage `json:"version"`
		IVMS101 json.RawMessage `json:"ivms101"`
	}
	if err := json.Unmarshal(v.Payload, &p); err != nil {
		return verification.Outcome{}, fmt.Errorf("payload of %s: %w", v.UUID, err)
	}
	body, err := json.Marshal(verifyUserRequest{VerificationUUID: v.UUID, OriginatingVaspID: v.OriginatingVaspID,
		BeneficiaryVaspID: v.BeneficiaryVaspID, AssetInfo: v.View().AssetInfo, RequiredBeneficiaryInfo: v.RequiredBeneficiaryInfo,
		Version: p.Version, IVMS101: p.IVMS101})
	if err != nil {
		return verification.Outcome{}, err
	}
	a, err := c.post.Post(ctx, signedhttp.Request{URL: c.cfg.VerifyUserURL, Secret: c.cfg.Secret, ID: "verify_" + v.UUID,
		Token: c.cfg.Token, Body: body})
	if err != nil {
		return verification.Outcome{}, &Failure{Status: a.Status, RetryAfter: a.RetryAfter, Reason: err.Error()}
	}
	var ans Answer
	if err := json.Unmarshal(a.Body, &ans); err != nil {
		return verification.Outcome{}, &Failure{Status: a.Status, Reason: fmt.Sprintf("answered %d with a body that is not a JSON answer {result, reason, message, ivms101}", a.Status)}
	}
	err = validate.Struct(ans)
	o := ans.Outcome()
	if err == nil {
		err = verification.CheckAnswer(o, true)
	}
	if err != nil {
		return o, &Failure{Status: a.Status, Reason: fmt.Sprintf("answered %d with an answer the enclave cannot use: %s", a.Status, reason(err))}
	}
	return o, nil
}

// reason is an answer check's message without its code.
func reason(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Message
	}
	return err.Error()
}
