// Package kytsim is a stateful Chainalysis sandbox served over real HTTP: KYT (the six v2
// transfer and withdrawal-attempt endpoints, GET /v1/alerts, /v1/users and /v1/assets) and the
// Entities API of Address Screening (POST /v2/entities, GET /v2/entities/{address}), with the JSON
// of the reference documents field for field. It registers idempotently (name-based
// externalIds), processes asynchronously (updatedAt stays null until a per-network delay has
// passed), rates risk deterministically from a dataset of the addresses the reference files
// name, and fails on demand (errors, 429s, latency, a full outage) so the enclave's
// reliability can be tested. It writes the wire format on its own, without importing the
// enclave's client, so a wrong field name cannot agree with itself.
package kytsim

import (
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Options configure a Sim.
type Options struct {
	// APIKey is the Token every request must carry.
	APIKey string
	// AttemptDelay is how long a withdrawal attempt takes to process; 0 processes it at once,
	// so its registration answer already has updatedAt.
	AttemptDelay time.Duration
	// TransferDelay is how long a transfer takes to process, unless NetworkDelays names its
	// network (KYT spelling, any case).
	TransferDelay time.Duration
	NetworkDelays map[string]time.Duration
	// RiskyFraction of unknown addresses (0..1) get a risky category, chosen by a hash of the
	// address, for load tests. 0 keeps every unknown address clean.
	RiskyFraction float64
	// Faults to start with; SetFaults and PUT /_sim/faults change them at run time.
	Faults Faults
	// EntityPendingReads is how many reads of a newly registered address answer the legacy
	// statuses PENDING, then IN_PROGRESS, before its assessment; 0 answers it at once, as the
	// Entities API does today.
	EntityPendingReads int
	// Seed makes fault injection repeatable.
	Seed uint64
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// DefaultOptions are those of `enclave kytsim`: attempts immediate, transfers 2 s.
func DefaultOptions(apiKey string) Options {
	return Options{APIKey: apiKey, TransferDelay: 2 * time.Second}
}

// Faults are failures the sandbox injects into the API endpoints (not /_sim).
type Faults struct {
	// ErrorRate is the fraction of requests answered 500 or 503.
	ErrorRate float64 `json:"errorRate"`
	// RateLimitRate is the fraction of requests answered 429.
	RateLimitRate float64 `json:"rateLimitRate"`
	// RetryAfterSeconds is sent as Retry-After with each 429; 0 sends none.
	RetryAfterSeconds int `json:"retryAfterSeconds"`
	// LatencyMillis is added to every request.
	LatencyMillis int `json:"latencyMs"`
	// Down answers every request 503 with an HTML page, as a load balancer would.
	Down bool `json:"down"`
	// EntityNotFound is how many of the next reads of a registered address answer "Entity not
	// found", as if the registration had been lost.
	EntityNotFound int `json:"entityNotFound"`
}

// Request is one API request the sandbox received, for tests to assert the exact call made.
type Request struct {
	Method string
	// Path is as it came over the wire, escaped: an id holding '/' shows as one %2F segment.
	Path   string
	Body   string
	Status int
}

// Sim is the sandbox. It is an http.Handler.
type Sim struct {
	opts Options
	mux  *http.ServeMux
	now  func() time.Time

	mu        sync.Mutex
	faults    Faults
	rng       *rand.Rand
	transfers map[string]*transfer
	attempts  map[string]*attempt
	alerts    []*alertRecord // every alert raised, in creation order, for /v1/alerts
	txSenders map[string]string
	requests  []Request
	entities  map[string]*entityState // registered addresses (Entities API), by addressKey
	overrides map[string]Entity       // addresses re-rated at run time, by addressKey
}

type transfer struct {
	UserID, Network, Asset, Ref, Direction string
	ExternalID                             string
	InputAddresses                         []string
	AssetAmount, AssetPrice                string
	TransferTimestamp                      string
	RegisteredAt, ReadyAt                  time.Time
	processed                              bool
	Tx                                     string
	Idx                                    int
	OutputAddress                          *string
	USDAmount                              *string
	Timestamp                              string
	Alerts                                 []*alertRecord
	// Counterparty is the address on the other side once processed (the output of a sent
	// transfer, the sender of a received one, as far as the sandbox's chain knows), and Rated
	// what the sandbox knew of it: exposure for /v1/users, re-rating for monitoring.
	Counterparty string
	Rated        *Entity
}

type attempt struct {
	UserID, NetworkAsGiven, Asset, Address, AttemptIdentifier string
	AssetAmount                                               json.RawMessage
	AssetPrice                                                string
	ExternalID                                                string
	RegisteredAt, ReadyAt                                     time.Time
	processed                                                 bool
	USDAmount                                                 *string
	Alerts                                                    []*alertRecord
	Rated                                                     *Entity
}

type alertRecord struct {
	ID, UserID, Asset, Direction, Ref, Tx, OutputAddress string
	Idx                                                  int
	Type                                                 string // TRANSFER or WITHDRAWAL_ATTEMPT
	Level                                                string
	Category                                             Category
	Service                                              string
	Exposure                                             string
	AmountUSD                                            string
	Rule                                                 Rule
	Timestamp, ReportedAt, CreatedAt                     time.Time
	// Status is the analyst's: Unreviewed when raised, then In Review, Flagged or Dismissed
	// (PUT /_sim/alerts/{id}), changed at StatusAt by StatusBy.
	Status   string
	StatusAt time.Time
	StatusBy string
}

// New returns a sandbox.
func New(o Options) *Sim {
	s := &Sim{opts: o, now: o.Now, faults: o.Faults, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		transfers: map[string]*transfer{}, attempts: map[string]*attempt{}, txSenders: map[string]string{},
		entities: map[string]*entityState{}, overrides: map[string]Entity{}}
	if s.now == nil {
		s.now = time.Now
	}
	m := http.NewServeMux()
	m.HandleFunc("POST /v2/users/{userId}/transfers", s.api(s.registerTransfer))
	m.HandleFunc("GET /v2/transfers/{externalId}", s.api(registered(s, s.transfers, "Transfer", func(t *transfer) any {
		return s.transferView(t, true)
	})))
	m.HandleFunc("GET /v2/transfers/{externalId}/alerts", s.api(registered(s, s.transfers, "Transfer", func(t *transfer) any {
		s.process(t)
		return alertsView(t.Alerts)
	})))
	m.HandleFunc("POST /v2/users/{userId}/withdrawal-attempts", s.api(s.registerAttempt))
	m.HandleFunc("GET /v2/withdrawal-attempts/{externalId}", s.api(registered(s, s.attempts, "Withdrawal attempt", func(a *attempt) any {
		return s.attemptView(a)
	})))
	m.HandleFunc("GET /v2/withdrawal-attempts/{externalId}/alerts", s.api(registered(s, s.attempts, "Withdrawal attempt", func(a *attempt) any {
		s.processAttempt(a)
		return alertsView(a.Alerts)
	})))
	m.HandleFunc("GET /v1/alerts", s.api(s.listAlerts))
	m.HandleFunc("GET /v1/alerts/", s.api(s.listAlerts))
	m.HandleFunc("GET /v1/assets", s.api(s.listAssets))
	m.HandleFunc("GET /v1/users", s.api(s.listUsers))
	m.HandleFunc("GET /v1/users/", s.api(s.listUsers))
	m.HandleFunc("GET /v1/users/{userId}", s.api(s.getUser))
	m.HandleFunc("POST /v2/entities", s.risk(s.registerEntity))
	m.HandleFunc("GET /v2/entities/{address}", s.risk(s.getEntity))
	m.HandleFunc("GET /_sim/faults", s.control(s.getFaults))
	m.HandleFunc("PUT /_sim/faults", s.control(s.putFaults))
	m.HandleFunc("GET /_sim/addresses", s.control(s.getAddresses))
	m.HandleFunc("PUT /_sim/addresses/{address}", s.control(s.putAddress))
	m.HandleFunc("PUT /_sim/alerts/{alertIdentifier}", s.control(s.putAlert))
	m.HandleFunc("POST /_sim/transactions", s.control(s.postTransaction))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errBody(http.StatusNotFound, "Not Found: "+r.Method+" "+r.URL.Path))
	})
	s.mux = m
	return s
}

// ManualClock is a clock that moves only when told: give its Now to Options.Now to decide when
// transfers finish processing.
type ManualClock struct {
	mu sync.Mutex
	t  time.Time
}

// NewManualClock returns a clock stopped at t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{t: t} }

// Now is the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock forward by d.
func (c *ManualClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Server is a sandbox on a real loopback port.
type Server struct {
	*Sim
	*httptest.Server
}

// NewServer starts a sandbox on a free loopback port; Close stops it.
func NewServer(o Options) *Server {
	s := New(o)
	return &Server{Sim: s, Server: httptest.NewServer(s)}
}

// ServeHTTP serves the APIs at the root and under /api/kyt and /api/risk, as the real base
// URLs of KYT and the Entities API have them.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for _, prefix := range []string{"/api/kyt", "/api/risk"} {
		if p, ok := strings.CutPrefix(r.URL.Path, prefix); ok && strings.HasPrefix(p, "/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = p
			// An escaped '/' inside an id stays inside it: the routes read the escaped path.
			r2.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
			r = r2
			break
		}
	}
	s.mux.ServeHTTP(w, r)
}

// Token is the API key the sandbox accepts, for its /_sim control endpoints too.
func (s *Sim) Token() string { return s.opts.APIKey }

// SetFaults changes the injected faults.
func (s *Sim) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Faults returns the injected faults.
func (s *Sim) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults
}

// Requests returns the API requests received so far (at most the last 100,000).
func (s *Sim) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// SetTransactionSender tells the sandbox's chain that tx was sent from address, so a received
// transfer in tx is rated by that address.
func (s *Sim) SetTransactionSender(tx, address string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.txSenders[strings.TrimSpace(tx)] = strings.TrimSpace(address)
}

type handler func(r *http.Request, body []byte) (int, any)

// api wraps a KYT endpoint: injected faults, the Token check, recording, JSON answers.
func (s *Sim) api(h handler) http.HandlerFunc { return s.endpoint(h, errBody) }

// risk wraps an Entities API endpoint: as api, with the Entities API's error body, which
// carries only a message.
func (s *Sim) risk(h handler) http.HandlerFunc {
	return s.endpoint(h, func(_ int, msg string) map[string]any { return map[string]any{"message": msg} })
}

func (s *Sim) endpoint(h handler, errBody func(int, string) map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		status := s.serveAPI(w, r, body, h, errBody)
		s.mu.Lock()
		if len(s.requests) >= 100000 {
			s.requests = s.requests[1:]
		}
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.EscapedPath(), Body: string(body), Status: status})
		s.mu.Unlock()
	}
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, body []byte, h handler, errBody func(int, string) map[string]any) int {
	s.mu.Lock()
	f := s.faults
	roll := s.rng.Float64()
	which := s.rng.IntN(2)
	s.mu.Unlock()
	if f.LatencyMillis > 0 {
		select {
		case <-time.After(time.Duration(f.LatencyMillis) * time.Millisecond):
		case <-r.Context().Done():
			return 0
		}
	}
	switch {
	case f.Down:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>")
		return http.StatusServiceUnavailable
	case roll < f.ErrorRate:
		st := []int{http.StatusInternalServerError, http.StatusServiceUnavailable}[which]
		writeJSON(w, st, errBody(st, http.StatusText(st)))
		return st
	case roll < f.ErrorRate+f.RateLimitRate:
		if f.RetryAfterSeconds > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfterSeconds))
		}
		writeJSON(w, http.StatusTooManyRequests, errBody(http.StatusTooManyRequests, "Too Many Requests"))
		return http.StatusTooManyRequests
	}
	if r.Header.Get("Token") != s.opts.APIKey || s.opts.APIKey == "" {
		writeJSON(w, http.StatusForbidden, errBody(http.StatusForbidden, "Forbidden: the Token header is missing or holds an invalid or expired API key"))
		return http.StatusForbidden
	}
	if accept := r.Header.Get("Accept"); accept != "" && !strings.Contains(accept, "json") && !strings.Contains(accept, "*/*") {
		writeJSON(w, http.StatusNotAcceptable, errBody(http.StatusNotAcceptable, "Not Acceptable: only application/json is produced"))
		return http.StatusNotAcceptable
	}
	st, out := h(r, body)
	writeJSON(w, st, out)
	return st
}

// control wraps a /_sim endpoint: Token checked, no faults.
func (s *Sim) control(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Token") != s.opts.APIKey {
			writeJSON(w, http.StatusForbidden, errBody(http.StatusForbidden, "Forbidden"))
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		st, out := h(r, body)
		writeJSON(w, st, out)
	}
}

// registered serves a request about one registered transfer or attempt (what names it in the
// 404), by its externalId: view is its answer, made with s.mu held.
func registered[T any](s *Sim, m map[string]T, what string, view func(T) any) handler {
	return func(r *http.Request, _ []byte) (int, any) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v, ok := m[r.PathValue("externalId")]
		if !ok {
			return http.StatusNotFound, errBody(http.StatusNotFound, what+" not found: "+r.PathValue("externalId"))
		}
		return http.StatusOK, view(v)
	}
}

func errBody(status int, msg string) map[string]any {
	return map[string]any{"status": status, "message": msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func bad(msg string, args ...any) (int, any) {
	return http.StatusBadRequest, errBody(http.StatusBadRequest, fmt.Sprintf(msg, args...))
}

// nameUUID is a version 3 (MD5, name-based) UUID, as KYT's externalIds are.
func nameUUID(parts ...string) string {
	return uuid.NewHash(md5.New(), uuid.NameSpaceOID, []byte(strings.Join(parts, "\x00")), 3).String()
}

// timeText renders a time as KYT does: "2022-06-13T13:26:16.778+00:00".
func timeText(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000") + "+00:00" }
