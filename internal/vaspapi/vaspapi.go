// Package vaspapi is the client of this VASP's own backend API that the enclave calls (DESIGN.md
// §12, §13): Verify User, asked about every inbound verification; Verify Account, asked about
// each account check a counterparty sends; Transaction Status, asked about each tx inquiry of a
// beneficiary. Each call is signed and
// authorised like a callback (Standard Webhooks with ENCLAVE_CALLBACK_SECRET, Bearer
// ENCLAVE_CALLBACK_TOKEN), bounded by ENCLAVE_VASP_API_TIMEOUT, and never follows a redirect.
package vaspapi

import (
	"context"
	"encoding/json"
	"errors"
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
	// VerifyAccountURL is the Verify Account API (ENCLAVE_VERIFY_ACCOUNT_URL); empty: not offered.
	VerifyAccountURL string
	// TxStatusURL is the Transaction Status API (ENCLAVE_TX_STATUS_URL); empty: not offered.
	TxStatusURL string
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
	// API names the API called: "Verify User API", ...
	API        string
	Status     int
	RetryAfter time.Duration
	Reason     string
	// Timeout is set when no answer came within the bound.
	Timeout bool
}

func (f *Failure) Error() string { return f.API + ": " + f.Reason }

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
	var ans Answer
	err := c.ask(ctx, "Verify User API", c.cfg.VerifyUserURL, "verify_"+v.UUID, verifyUserRequest{VerificationUUID: v.UUID,
		OriginatingVaspID: v.OriginatingVaspID, BeneficiaryVaspID: v.BeneficiaryVaspID, AssetInfo: v.View().AssetInfo,
		RequiredBeneficiaryInfo: v.RequiredBeneficiaryInfo, Version: p.Version, IVMS101: p.IVMS101}, &ans, "{result, reason, message, ivms101}",
		func() error { return verification.CheckAnswer(ans.Outcome(), true) })
	return ans.Outcome(), err
}

// ask posts question q to the API at url (webhook-id id) and reads its answer into a, whose
// shape (named in the failure's words) is checked by its tags and then by check, if any. Any
// problem is a *Failure.
func (c *Client) ask(ctx context.Context, api, url, id string, q, a any, shape string, check func() error) error {
	body, err := json.Marshal(q)
	if err != nil {
		return err
	}
	ans, err := c.post.Post(ctx, signedhttp.Request{URL: url, Secret: c.cfg.Secret, ID: id, Token: c.cfg.Token, Body: body})
	if err != nil {
		return &Failure{API: api, Status: ans.Status, RetryAfter: ans.RetryAfter, Reason: err.Error(),
			Timeout: errors.Is(err, signedhttp.ErrTimeout)}
	}
	if err := json.Unmarshal(ans.Body, a); err != nil {
		return &Failure{API: api, Status: ans.Status, Reason: fmt.Sprintf("answered %d with a body that is not a JSON answer %s", ans.Status, shape)}
	}
	err = validate.Struct(a)
	if err == nil && check != nil {
		err = check()
	}
	if err != nil {
		return &Failure{API: api, Status: ans.Status, Reason: fmt.Sprintf("answered %d with an answer the enclave cannot use: %s", ans.Status, apperr.Message(err))}
	}
	return nil
}
