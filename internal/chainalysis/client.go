// Package chainalysis is the enclave's typed client of the Chainalysis APIs: KYT v2 (register a
// transfer or a withdrawal attempt, read its summary, read its alerts), KYT v1 (alerts raised
// later, users' risk) and the Entities API of Address Screening (register an address, read its
// risk). One Client talks to one base URL with one key: KYT and the Entities API each get theirs. Each call makes exactly
// one HTTP attempt; retrying is the pipeline's job. Every failure is an *Error classified as
// transient (try again, perhaps after RetryAfter) or permanent (Chainalysis refused it for
// good), so the pipeline can decide without reading status codes.
package chainalysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Endpoint names, used in errors and metric labels.
const (
	EndpointRegisterTransfer = "register_transfer"
	EndpointTransferSummary  = "transfer_summary"
	EndpointTransferAlerts   = "transfer_alerts"
	EndpointRegisterAttempt  = "register_attempt"
	EndpointAttemptSummary   = "attempt_summary"
	EndpointAttemptAlerts    = "attempt_alerts"
)

// DefaultTimeout bounds a call when Options.Timeout is not set.
const DefaultTimeout = 10 * time.Second

// Options configure a Client.
type Options struct {
	// BaseURL is the KYT API root, which may carry a path prefix
	// (https://api.chainalysis.com/api/kyt). Required.
	BaseURL string
	// APIKey is sent as the Token header. Required; never logged or put in an error.
	APIKey string
	// HTTPClient defaults to a client with sane transport timeouts. Whatever is given, the
	// client never follows a redirect: the Token goes to the configured URL and nowhere else.
	HTTPClient *http.Client
	// Timeout bounds every call, inside any deadline the caller's context already has;
	// default 10s (CHAINALYSIS_TIMEOUT). A call cut short is a transient *Error.
	Timeout time.Duration
	// RateLimit is the most requests per second this process sends; 0 means no limit.
	RateLimit float64
	// Burst is how many requests may go at once under RateLimit; default 1 per 10 req/s, at least 1.
	Burst int
	// Registerer receives the client's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Client calls KYT. It is safe for concurrent use; one Client should serve the whole process
// so the rate limit and a 429's pause apply to every caller.
type Client struct {
	base    *url.URL
	key     string
	hc      *http.Client
	timeout time.Duration
	limiter *rate.Limiter

	mu          sync.Mutex
	pausedUntil time.Time // after a 429: no call leaves before this

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a Client.
func New(o Options) (*Client, error) {
	base, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("chainalysis: the base URL must be an http(s) URL with a host (the value is not shown: it may hold credentials)")
	}
	if o.APIKey == "" {
		return nil, errors.New("chainalysis: an API key is required")
	}
	c := &Client{base: base, key: o.APIKey, timeout: o.Timeout}
	if o.HTTPClient != nil {
		hc := *o.HTTPClient
		c.hc = &hc
	} else {
		// The default transport, keeping more than its two idle connections to the one host
		// every worker calls.
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 256
		c.hc = &http.Client{Transport: t}
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	c.limiter = rate.NewLimiter(rate.Inf, 0)
	if o.RateLimit > 0 {
		burst := o.Burst
		if burst <= 0 {
			burst = max(1, int(o.RateLimit/10))
		}
		c.limiter = rate.NewLimiter(rate.Limit(o.RateLimit), burst)
	}
	c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "enclave_chainalysis_requests_total",
		Help: "Chainalysis requests (KYT and Entities API) by endpoint and outcome (ok, transient, permanent).",
	}, []string{"endpoint", "outcome"})
	c.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "enclave_chainalysis_request_duration_seconds",
		Help:    "Chainalysis request latency (KYT and Entities API) by endpoint.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"endpoint"})
	if o.Registerer != nil {
		// The KYT and the Entities API clients share the two metrics (their endpoints differ).
		var err error
		if c.requests, err = registerOrReuse(o.Registerer, c.requests); err != nil {
			return nil, err
		}
		if c.duration, err = registerOrReuse(o.Registerer, c.duration); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func registerOrReuse[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("chainalysis: register metrics: %w", err)
	}
	return c, nil
}

// RegisterTransfer registers a sent or received transfer for the user.
func (c *Client) RegisterTransfer(ctx context.Context, userID string, r RegisterTransferRequest) (Transfer, error) {
	var out Transfer
	err := c.do(ctx, EndpointRegisterTransfer, http.MethodPost, "/v2/users/"+url.PathEscape(userID)+"/transfers", r, &out)
	return out, err
}

// TransferSummary reads a registered transfer; it is processed once UpdatedAt is set.
func (c *Client) TransferSummary(ctx context.Context, externalID string) (Transfer, error) {
	var out Transfer
	err := c.do(ctx, EndpointTransferSummary, http.MethodGet, "/v2/transfers/"+url.PathEscape(externalID), nil, &out)
	return out, err
}

// TransferAlerts reads the alerts raised on a processed transfer.
func (c *Client) TransferAlerts(ctx context.Context, externalID string) ([]Alert, error) {
	var out Alerts
	err := c.do(ctx, EndpointTransferAlerts, http.MethodGet, "/v2/transfers/"+url.PathEscape(externalID)+"/alerts", nil, &out)
	return out.Alerts, err
}

// RegisterAttempt registers a withdrawal attempt for the user.
func (c *Client) RegisterAttempt(ctx context.Context, userID string, r RegisterAttemptRequest) (WithdrawalAttempt, error) {
	var out WithdrawalAttempt
	err := c.do(ctx, EndpointRegisterAttempt, http.MethodPost, "/v2/users/"+url.PathEscape(userID)+"/withdrawal-attempts", r, &out)
	return out, err
}

// AttemptSummary reads a registered withdrawal attempt.
func (c *Client) AttemptSummary(ctx context.Context, externalID string) (WithdrawalAttempt, error) {
	var out WithdrawalAttempt
	err := c.do(ctx, EndpointAttemptSummary, http.MethodGet, "/v2/withdrawal-attempts/"+url.PathEscape(externalID), nil, &out)
	return out, err
}

// AttemptAlerts reads the alerts raised on a withdrawal attempt.
func (c *Client) AttemptAlerts(ctx context.Context, externalID string) ([]Alert, error) {
	var out Alerts
	err := c.do(ctx, EndpointAttemptAlerts, http.MethodGet, "/v2/withdrawal-attempts/"+url.PathEscape(externalID)+"/alerts", nil, &out)
	return out.Alerts, err
}

// do makes the one HTTP attempt of a call: wait for the rate limiter and any 429 pause, send,
// classify the answer, decode a 2xx body into out.
func (c *Client) do(ctx context.Context, endpoint, method, path string, in, out any) (err error) {
	start := time.Now()
	defer func() {
		outcome := "ok"
		if err != nil {
			outcome = "permanent"
			if IsTransient(err) {
				outcome = "transient"
			}
		}
		c.requests.WithLabelValues(endpoint, outcome).Inc()
		c.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	}()
	// The call's own deadline, inside the caller's: a job's deadline is a few calls long.
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()
	if err := c.waitTurn(ctx); err != nil {
		return &Error{Endpoint: endpoint, Transient: true, Message: "waiting for the rate limit: " + err.Error(), Err: err}
	}

	req, err := c.newRequest(ctx, method, path, in)
	if err != nil {
		return &Error{Endpoint: endpoint, Message: err.Error(), Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// Timeouts, refused connections, resets: the request may or may not have arrived;
		// registration is idempotent, so trying again is always safe.
		msg := transportMessage(err)
		if errors.Is(context.Cause(ctx), errCallTimeout) {
			msg = fmt.Sprintf("no answer within %s (CHAINALYSIS_TIMEOUT)", c.timeout)
		}
		return &Error{Endpoint: endpoint, Transient: true, Message: msg, Err: err}
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := classify(endpoint, resp, body)
		if resp.StatusCode == http.StatusTooManyRequests {
			c.pause(e.RetryAfter)
		}
		return e
	}
	if readErr != nil {
		return &Error{Endpoint: endpoint, Transient: true, StatusCode: resp.StatusCode, Message: "reading the answer: " + readErr.Error(), Err: readErr}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &Error{Endpoint: endpoint, Transient: true, StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("answer %d is not the JSON expected: %v", resp.StatusCode, err), Err: err}
	}
	storable(reflect.ValueOf(out))
	return nil
}

// storable strips NUL characters ("\u0000" in the JSON) from every string of a decoded answer:
// PostgreSQL's text and jsonb refuse them, so an answer carrying one would fail the transaction
// that stores it, on every try. (json.Unmarshal already replaces invalid UTF-8.)
func storable(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			storable(v.Elem())
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				storable(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // raw JSON, passed on as it came, never stored as text
		}
		for i := range v.Len() {
			storable(v.Index(i))
		}
	case reflect.String:
		if v.CanSet() && strings.ContainsRune(v.String(), 0) {
			v.SetString(strings.ReplaceAll(v.String(), "\x00", ""))
		}
	}
}

// newRequest builds a call of path (its ids already escaped with url.PathEscape, so none holds
// '/', '?', '#' or '%'). A segment that is empty, "." or ".." is refused before anything is
// sent: a server or proxy would resolve it, and the call, with the Token, would reach another
// endpoint (an id from outside — a VASP id, an address, an externalId — is never trusted to
// have been checked upstream).
func (c *Client) newRequest(ctx context.Context, method, path string, in any) (*http.Request, error) {
	u := *c.base
	path, u.RawQuery, _ = strings.Cut(path, "?")
	for _, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return nil, errors.New(`an id of the request path is empty, "." or "..": refused before sending`)
		}
	}
	// Path is the decoded form and RawPath the escaped one, which must decode to it: else
	// EscapedPath escapes Path again and an id with an escaped byte arrives double-escaped.
	decoded, err := url.PathUnescape(path)
	if err != nil {
		return nil, fmt.Errorf("request path: %w", err)
	}
	u.Path = c.base.Path + decoded
	u.RawPath = c.base.EscapedPath() + path
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Token", c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// waitTurn blocks until the rate limiter and any pause after a 429 let the call go.
func (c *Client) waitTurn(ctx context.Context) error {
	c.mu.Lock()
	until := c.pausedUntil
	c.mu.Unlock()
	if d := time.Until(until); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return c.limiter.Wait(ctx)
}

// pause holds every caller back after a 429, for Retry-After or one second.
func (c *Client) pause(d time.Duration) {
	if d <= 0 {
		d = time.Second
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if until := time.Now().Add(d); until.After(c.pausedUntil) {
		c.pausedUntil = until
	}
}

// Error is a failed KYT call. Message is safe to store and show: it holds Chainalysis's own
// message or a description of the failure, never the API key.
type Error struct {
	Endpoint   string
	StatusCode int // 0 when no HTTP answer arrived
	Message    string
	Transient  bool
	RetryAfter time.Duration // from a Retry-After header, when given
	// NotFound marks the Entities API's "Entity not found": the address must be registered
	// (again). It is transient: registering and asking again answers it.
	NotFound bool
	Err      error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Transient {
		kind = "transient"
	}
	if e.StatusCode != 0 {
		return fmt.Sprintf("chainalysis %s: %s error %d: %s", e.Endpoint, kind, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("chainalysis %s: %s error: %s", e.Endpoint, kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// IsTransient reports whether err is worth trying again. Errors that are not *Error (a bug,
// a cancelled context) count as transient: nothing says Chainalysis refused the request.
func IsTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Transient
	}
	return err != nil
}

// RetryAfter returns the wait Chainalysis asked for, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// errCallTimeout is the cause of a call cut short by the client's own Timeout.
var errCallTimeout = errors.New("chainalysis call timed out")

// classify turns a non-2xx answer into an *Error. 429, 5xx and 3xx are transient; 4xx are
// permanent. A redirect is never followed (the Token would go with it): nothing says
// Chainalysis refused the request, so it is tried again, and the message says what happened. The body may be JSON, text or an HTML error page; only a JSON message or a short
// plain text is kept.
func classify(endpoint string, resp *http.Response, body []byte) *Error {
	e := &Error{Endpoint: endpoint, StatusCode: resp.StatusCode}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		e.Transient = true
	case resp.StatusCode == http.StatusRequestTimeout:
		e.Transient = true
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		e.Transient = true
		e.Message = "answered with a redirect, which is not followed: check the base URL"
		return e
	}
	e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	e.Message = messageOf(resp, body)
	return e
}

func messageOf(resp *http.Response, body []byte) string {
	var j struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	if json.Unmarshal(body, &j) == nil {
		for _, v := range []any{j.Message, j.Error} {
			if s, ok := v.(string); ok && s != "" {
				return truncate(s)
			}
		}
	}
	text := strings.TrimSpace(string(body))
	ct := resp.Header.Get("Content-Type")
	if text == "" || strings.Contains(ct, "html") || strings.HasPrefix(text, "<") {
		return http.StatusText(resp.StatusCode)
	}
	return truncate(text)
}

// truncate keeps a message storable and short: UTF-8 without NUL (an answer may carry any
// bytes), at most 500 characters.
func truncate(s string) string {
	const n = 500
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if utf8.RuneCountInString(s) > n {
		return string([]rune(s)[:n]) + "…"
	}
	return s
}

// parseRetryAfter reads seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// transportMessage describes a failure to get an answer without quoting the request (whose
// URL holds only ids, but whose headers hold the key).
func transportMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer before the deadline"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return err.Error()
}
