// Package signedhttp sends one signed JSON POST and says what its answer means. Everything the
// enclave POSTs to someone else goes through it — callbacks to the VASP's backend, messages to
// counterparty enclaves, questions to the VASP's own API — so all of them are signed the same
// way (Standard Webhooks, DESIGN.md §6), never follow a redirect (a secret or a token goes only
// to the configured URL), read at most a bounded answer, honour Retry-After, and never put a
// URL, which may carry credentials, into an error. The one unsigned request, the probe of a
// counterparty's /healthz (Get), is read the same way.
package signedhttp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/travelrule/enclave/webhook"
)

// MaxAnswerBytes bounds the answer body read: the VASP API's answers and a counterparty's
// {"result": true} or error are a few hundred bytes.
const MaxAnswerBytes = 256 << 10

// Client posts signed requests. It is safe for concurrent use.
type Client struct {
	http    *http.Client
	timeout time.Duration
}

// New returns a Client that bounds each request by timeout. hc may be nil (a client keeping
// connections to a few hosts alive); whatever is given, redirects are not followed.
func New(hc *http.Client, timeout time.Duration) *Client {
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		hc = &http.Client{Transport: t}
	} else {
		c := *hc
		hc = &c
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{http: hc, timeout: timeout}
}

// Timeout is the bound of one request.
func (c *Client) Timeout() time.Duration { return c.timeout }

// Request is one signed POST.
type Request struct {
	URL string
	// Secret signs the body, "whsec_<base64>"; ID is its webhook-id, the same on every retry
	// so the receiver can tell a retry from a new message. Without a secret the request is
	// not signed: a TRP counterparty authenticates us by mTLS, not by signature.
	Secret, ID string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// Header holds further headers (X-Vasp-Id; TRP's, whose Content-Type replaces the
	// default application/json).
	Header http.Header
	Body   []byte
}

// Answer is what came back.
type Answer struct {
	// Status is the HTTP status, 0 when no answer came.
	Status int
	// RetryAfter is the Retry-After the answer asked for, if any.
	RetryAfter time.Duration
	// Body is the answer's body, at most MaxAnswerBytes.
	Body []byte
}

// OK reports a 2xx.
func (a Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// Transient reports whether a failed request may succeed if tried again: no answer, 408, 425,
// 429 or a 5xx. A redirect or another 4xx is an answer that will not change by itself.
func (a Answer) Transient() bool {
	switch {
	case a.Status == 0, a.Status >= 500:
		return true
	case a.Status == http.StatusRequestTimeout, a.Status == http.StatusTooEarly, a.Status == http.StatusTooManyRequests:
		return true
	}
	return false
}

// Post sends r once. It returns the answer and, unless it was a 2xx, an error saying why in
// words an operator reads (no URL in it).
func (c *Client) Post(ctx context.Context, r Request) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return Answer{}, errors.New("build request: the URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	if r.Secret != "" {
		h, err := webhook.Sign(r.Secret, r.ID, time.Now(), r.Body)
		if err != nil {
			return Answer{}, err
		}
		for k, v := range h {
			req.Header[k] = v
		}
	}
	for k, v := range r.Header {
		req.Header[k] = v
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	return c.do(req)
}

// Get asks url once, unsigned, with the same bound, no redirect and bounded answer as Post: the
// probe of a counterparty's /healthz.
func (c *Client) Get(ctx context.Context, url string) (Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Answer{}, errors.New("build request: the URL is not valid")
	}
	return c.do(req)
}

// ErrTimeout is the error of a request that got no answer within the client's bound (or its
// context's deadline): the answer is "no answer within <bound>".
var ErrTimeout = errors.New("no answer")

// do sends req and reads its answer.
func (c *Client) do(req *http.Request) (Answer, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return Answer{}, fmt.Errorf("%w within %s", ErrTimeout, c.timeout)
		}
		return Answer{}, fmt.Errorf("send: %s", sanitize(err))
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.StatusCode}
	a.Body, err = io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes))
	if err != nil && a.OK() {
		return a, fmt.Errorf("answered %d but the body could not be read: %s", a.Status, sanitize(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) //nolint:errcheck // reuse the connection
	if a.OK() {
		return a, nil
	}
	if v, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && v > 0 {
		a.RetryAfter = min(time.Duration(v)*time.Second, time.Hour)
	}
	if a.Status >= 300 && a.Status < 400 {
		return a, fmt.Errorf("answered %d, a redirect, which is not followed: only a 2xx from the configured URL itself counts", a.Status)
	}
	return a, fmt.Errorf("answered %d", a.Status)
}

// sanitize keeps a transport error's cause without the URL, which may carry credentials.
func sanitize(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}
