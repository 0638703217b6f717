// Package kytsim is a stateful Chainalysis KYT sandbox served over real HTTP: the six v2
// transfer and withdrawal-attempt endpoints, GET /v1/alerts and GET /v1/assets, with the JSON
// of the reference documents field for field. It registers idempotently (name-based
// externalIds), processes asynchronously (updatedAt stays null until a per-network delay has
// passed), rates risk deterministically from a dataset of the addresses the reference files
// name, and fails on demand (errors, 429s, latency, a full outage) so the enclave's
// reliability can be tested. It writes the wire format on its own, without importing the
// enclave's client, so a wrong field name cannot agree with itself.
package kytsim

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
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
}

// Request is one API request the sandbox received, for tests to assert the exact call made.
type Request struct {
	Method string
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
}

// New returns a sandbox.
func New(o Options) *Sim {
	s := &Sim{opts: o, now: o.Now, faults: o.Faults, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)),
		transfers: map[string]*transfer{}, attempts: map[string]*attempt{}, txSenders: map[string]string{}}
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
	m.HandleFunc("GET /_sim/faults", s.control(s.getFaults))
	m.HandleFunc("PUT /_sim/faults", s.control(s.putFaults))
	m.HandleFunc("GET /_sim/addresses", s.control(s.getAddresses))
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

// ServeHTTP serves the API at the root and under /api/kyt, as the real base URL has it.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p, ok := strings.CutPrefix(r.URL.Path, "/api/kyt"); ok && strings.HasPrefix(p, "/") {
		r2 := r.Clone(r.Context())
		r2.URL.Path = p
		r2.URL.RawPath = ""
		r = r2
	}
	s.mux.ServeHTTP(w, r)
}

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

// api wraps an API endpoint: injected faults, the Token check, recording, JSON answers.
func (s *Sim) api(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		status := s.serveAPI(w, r, body, h)
		s.mu.Lock()
		if len(s.requests) >= 100000 {
			s.requests = s.requests[1:]
		}
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Body: string(body), Status: status})
		s.mu.Unlock()
	}
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, body []byte, h handler) int {
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

// --- transfers ---

func (s *Sim) registerTransfer(r *http.Request, body []byte) (int, any) {
	var req struct {
		Network           string          `json:"network"`
		Asset             string          `json:"asset"`
		TransferReference string          `json:"transferReference"`
		Direction         string          `json:"direction"`
		TransferTimestamp string          `json:"transferTimestamp"`
		AssetAmount       json.RawMessage `json:"assetAmount"`
		OutputAddress     string          `json:"outputAddress"`
		InputAddresses    []string        `json:"inputAddresses"`
		AssetPrice        json.RawMessage `json:"assetPrice"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("Bad Request: %v", err)
	}
	userID := r.PathValue("userId")
	switch {
	case strings.TrimSpace(userID) == "":
		return bad("userId is required")
	case req.Network == "":
		return bad("network is required")
	case req.Asset == "":
		return bad("asset is required")
	case req.TransferReference == "":
		return bad("transferReference is required")
	case req.Direction != "sent" && req.Direction != "received":
		return bad("direction must be sent or received, got %q", req.Direction)
	}
	n, ok := findNetwork(req.Network)
	if !ok {
		return bad("network %q is not supported", req.Network)
	}
	tx, second, hasSecond := strings.Cut(req.TransferReference, ":")
	switch {
	case tx == "":
		return bad("transferReference %q has no transaction hash", req.TransferReference)
	case n.HashOnly && hasSecond:
		return bad("transferReference on %s is the transaction hash alone, got %q", n.Name, req.TransferReference)
	case !n.HashOnly && n.Name != "XRPL" && (!hasSecond || second == ""):
		return bad("transferReference on %s must be \"<transaction hash>:<output address>\"%s, got %q", n.Name,
			map[bool]string{true: " or \"<transaction hash>:<output index>\"", false: ""}[n.UTXO], req.TransferReference)
	}
	amount, err := decimalText(req.AssetAmount)
	if err != nil {
		return bad("assetAmount: %v", err)
	}
	price, err := decimalText(req.AssetPrice)
	if err != nil {
		return bad("assetPrice: %v", err)
	}
	upper := strings.ToUpper(n.Name)
	id := nameUUID("transfer", userID, upper, req.Asset, req.TransferReference, req.Direction)

	s.mu.Lock()
	defer s.mu.Unlock()
	t, exists := s.transfers[id]
	if !exists {
		now := s.now()
		delay := s.opts.TransferDelay
		for k, d := range s.opts.NetworkDelays {
			if strings.EqualFold(k, n.Name) {
				delay = d
			}
		}
		t = &transfer{UserID: userID, Network: upper, Asset: req.Asset, Ref: req.TransferReference, Direction: req.Direction,
			ExternalID: id, InputAddresses: req.InputAddresses, AssetAmount: amount, AssetPrice: price,
			TransferTimestamp: req.TransferTimestamp, RegisteredAt: now, ReadyAt: now.Add(delay)}
		s.transfers[id] = t
	}
	return http.StatusOK, s.transferView(t, false)
}

// transferJSON is a transfer as KYT writes it, fields in the guide's order.
type transferJSON struct {
	UpdatedAt         *string `json:"updatedAt"`
	Asset             string  `json:"asset"`
	Network           string  `json:"network"`
	TransferReference string  `json:"transferReference"`
	Tx                *string `json:"tx"`
	Idx               *int    `json:"idx"`
	USDAmount         any     `json:"usdAmount"`
	AssetAmount       any     `json:"assetAmount"`
	Timestamp         *string `json:"timestamp"`
	OutputAddress     *string `json:"outputAddress"`
	ExternalID        string  `json:"externalId"`
}

// transferView is the JSON of a transfer: the registration answer never has details; the
// summary has them once processed.
func (s *Sim) transferView(t *transfer, summary bool) transferJSON {
	v := transferJSON{Asset: t.Asset, Network: t.Network, TransferReference: t.Ref, ExternalID: t.ExternalID}
	if !summary || !s.process(t) {
		return v
	}
	updated, tx, idx, ts := timeText(t.ReadyAt), t.Tx, t.Idx, t.Timestamp
	v.UpdatedAt, v.Tx, v.Idx, v.Timestamp = &updated, &tx, &idx, &ts
	v.USDAmount = numberOrNil(t.USDAmount)
	v.AssetAmount = json.Number(t.AssetAmount)
	v.OutputAddress = t.OutputAddress
	return v
}

// process fills in a transfer's details and alerts once its delay has passed; it reports
// whether the transfer is processed. Must be called with s.mu held.
func (s *Sim) process(t *transfer) bool {
	if t.processed {
		return true
	}
	if s.now().Before(t.ReadyAt) {
		return false
	}
	t.processed = true
	tx, second, _ := strings.Cut(t.Ref, ":")
	t.Tx = tx
	known, isKnown := knownTransactions[tx]
	if i, err := strconv.Atoi(second); err == nil {
		t.Idx = i
		if isKnown && known.OutputAddress != "" {
			t.OutputAddress = &known.OutputAddress
		}
	} else if second != "" {
		t.OutputAddress = &second
	} else if isKnown && known.OutputAddress != "" {
		t.OutputAddress = &known.OutputAddress
	}
	switch {
	case t.AssetAmount != "":
	case isKnown && known.AssetAmount != "":
		t.AssetAmount = known.AssetAmount
	default:
		t.AssetAmount = chainAmount(t.Ref)
	}
	t.USDAmount = usd(t.AssetAmount, t.Asset, t.AssetPrice)
	switch {
	case t.TransferTimestamp != "":
		t.Timestamp = t.TransferTimestamp
	case isKnown && known.Timestamp != "":
		t.Timestamp = known.Timestamp
	default:
		t.Timestamp = timeText(t.RegisteredAt.Truncate(time.Second))
	}

	// Who is on the other side: for a sent transfer, its output; for a received one, its
	// sender, as far as the sandbox's chain knows.
	var counterparty *Entity
	if t.Direction == "sent" {
		if t.OutputAddress != nil {
			counterparty = s.entityOf(*t.OutputAddress)
		}
	} else {
		switch {
		case isKnown && known.Sender.Service != "":
			e := known.Sender
			counterparty = &e
		case s.txSenders[tx] != "":
			counterparty = s.entityOf(s.txSenders[tx])
		case len(t.InputAddresses) > 0:
			counterparty = s.entityOf(t.InputAddresses[0])
		default:
			counterparty = s.entityOf("tx:" + tx)
		}
	}
	out := ""
	if t.OutputAddress != nil {
		out = *t.OutputAddress
	}
	t.Alerts = s.raise(counterparty, alertRecord{UserID: t.UserID, Asset: t.Asset, Direction: t.Direction, Ref: t.Ref,
		Tx: tx, OutputAddress: out, Idx: t.Idx, Type: "TRANSFER", AmountUSD: deref(t.USDAmount), ReportedAt: t.RegisteredAt,
		CreatedAt: t.ReadyAt, Timestamp: mustTime(t.Timestamp, t.RegisteredAt)})
	return true
}

// --- withdrawal attempts ---

func (s *Sim) registerAttempt(r *http.Request, body []byte) (int, any) {
	var req struct {
		Network           string          `json:"network"`
		Asset             string          `json:"asset"`
		Address           string          `json:"address"`
		AttemptIdentifier string          `json:"attemptIdentifier"`
		AssetAmount       json.RawMessage `json:"assetAmount"`
		AttemptTimestamp  string          `json:"attemptTimestamp"`
		AssetPrice        json.RawMessage `json:"assetPrice"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("Bad Request: the body is not the JSON expected: %v", err)
	}
	userID := r.PathValue("userId")
	switch {
	case strings.TrimSpace(userID) == "":
		return bad("userId is required")
	case req.Network == "":
		return bad("network is required")
	case req.Asset == "":
		return bad("asset is required")
	case req.Address == "":
		return bad("address is required")
	case req.AttemptIdentifier == "":
		return bad("attemptIdentifier is required")
	case len(req.AssetAmount) == 0 || string(req.AssetAmount) == "null":
		return bad("assetAmount is required")
	case req.AttemptTimestamp == "":
		return bad("attemptTimestamp is required")
	}
	n, ok := findNetwork(req.Network)
	if !ok {
		return bad("network %q is not supported", req.Network)
	}
	if !validAddress(n, req.Address) {
		return bad("address %q is not a valid %s address", req.Address, n.Name)
	}
	amount, err := decimalText(req.AssetAmount)
	if err != nil || amount == "" {
		return bad("assetAmount must be a number")
	}
	price, err := decimalText(req.AssetPrice)
	if err != nil {
		return bad("assetPrice: %v", err)
	}
	id := nameUUID("attempt", userID, req.AttemptIdentifier)

	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.attempts[id]
	if !exists {
		now := s.now()
		a = &attempt{UserID: userID, NetworkAsGiven: req.Network, Asset: req.Asset, Address: req.Address,
			AttemptIdentifier: req.AttemptIdentifier, AssetAmount: req.AssetAmount, AssetPrice: price,
			ExternalID: id, RegisteredAt: now, ReadyAt: now.Add(s.opts.AttemptDelay)}
		s.attempts[id] = a
	}
	return http.StatusOK, s.attemptView(a)
}

// attemptJSON is a withdrawal attempt as KYT writes it, fields in the guide's order.
type attemptJSON struct {
	Network           string          `json:"network"`
	Asset             string          `json:"asset"`
	Address           string          `json:"address"`
	AttemptIdentifier string          `json:"attemptIdentifier"`
	AssetAmount       json.RawMessage `json:"assetAmount"`
	USDAmount         any             `json:"usdAmount"`
	UpdatedAt         *string         `json:"updatedAt"`
	ExternalID        string          `json:"externalId"`
}

func (s *Sim) attemptView(a *attempt) attemptJSON {
	v := attemptJSON{Network: a.NetworkAsGiven, Asset: a.Asset, Address: a.Address, AttemptIdentifier: a.AttemptIdentifier,
		AssetAmount: a.AssetAmount, ExternalID: a.ExternalID}
	if s.processAttempt(a) {
		updated := timeText(a.ReadyAt)
		v.USDAmount, v.UpdatedAt = numberOrNil(a.USDAmount), &updated
	}
	return v
}

func (s *Sim) processAttempt(a *attempt) bool {
	if a.processed {
		return true
	}
	if s.now().Before(a.ReadyAt) {
		return false
	}
	a.processed = true
	amount, _ := decimalText(a.AssetAmount)
	a.USDAmount = usd(amount, a.Asset, a.AssetPrice)
	a.Alerts = s.raise(s.entityOf(a.Address), alertRecord{UserID: a.UserID, Asset: a.Asset, Direction: "sent",
		OutputAddress: a.Address, Type: "WITHDRAWAL_ATTEMPT", AmountUSD: deref(a.USDAmount), ReportedAt: a.RegisteredAt,
		CreatedAt: a.ReadyAt, Timestamp: a.RegisteredAt})
	return true
}

// --- risk ---

// entityOf returns what the sandbox knows of an address: the dataset, then (for a stated
// fraction of unknown addresses) a risky category chosen by hash, else nothing (clean).
func (s *Sim) entityOf(address string) *Entity {
	key := addressKey(address)
	for _, e := range KnownAddresses {
		if addressKey(e.Address) == key {
			e := e
			return &e
		}
	}
	if s.opts.RiskyFraction <= 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	sum := h.Sum64()
	if float64(sum%1_000_000)/1_000_000 >= s.opts.RiskyFraction {
		return nil
	}
	c := riskyCategories[(sum/1_000_000)%uint64(len(riskyCategories))]
	return &Entity{Address: address, Cluster: "Synthetic " + c.Name, Category: c,
		Service: strings.ToUpper(c.Name) + ": Synthetic " + key, Source: "risky fraction"}
}

// raise applies the alert rules to exposure to e and records the alerts. Must hold s.mu.
func (s *Sim) raise(e *Entity, base alertRecord) []*alertRecord {
	if e == nil {
		return nil
	}
	exposure := e.Exposure
	if exposure == "" {
		exposure = "DIRECT"
	}
	amount, ok := new(big.Rat).SetString(base.AmountUSD)
	if !ok {
		amount = new(big.Rat)
	}
	var out []*alertRecord
	for _, rule := range Rules {
		if rule.Category != e.Category || rule.Exposure != exposure || (rule.Direction != "" && rule.Direction != base.Direction) {
			continue
		}
		if amount.Cmp(new(big.Rat).SetInt64(int64(rule.MinUSD))) <= 0 && !(rule.MinUSD == 0 && base.AmountUSD == "") {
			continue
		}
		a := base
		id, _ := uuid.NewUUID() // version 1, as KYT's alert ids are
		a.ID = id.String()
		a.Level, a.Category, a.Exposure, a.Rule = rule.Level, e.Category, exposure, rule
		if exposure == "DIRECT" {
			a.Service = e.Service
		}
		out = append(out, &a)
		s.alerts = append(s.alerts, &a)
		break // one alert per rule match, the most specific rule first
	}
	return out
}

// alertJSON is one v2 alert, fields in the guide's order.
type alertJSON struct {
	AlertLevel   string      `json:"alertLevel"`
	Category     string      `json:"category"`
	Service      any         `json:"service"`
	ExternalID   string      `json:"externalId"`
	AlertAmount  json.Number `json:"alertAmount"`
	ExposureType string      `json:"exposureType"`
	CategoryID   int         `json:"categoryId"`
}

func alertsView(as []*alertRecord) map[string][]alertJSON {
	list := make([]alertJSON, 0, len(as))
	for _, a := range as {
		list = append(list, alertJSON{AlertLevel: a.Level, Category: a.Category.Name, Service: nilIfEmpty(a.Service),
			ExternalID: a.ID, AlertAmount: numberOrZero(a.AmountUSD), ExposureType: a.Exposure, CategoryID: a.Category.ID})
	}
	return map[string][]alertJSON{"alerts": list}
}

// --- v1 ---

func (s *Sim) listAlerts(r *http.Request, _ []byte) (int, any) {
	q := r.URL.Query()
	limit, offset := 100, 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("limit must be a non-negative integer")
		}
		limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return bad("offset must be a non-negative integer")
		}
		offset = n
	}
	var gte, lte *time.Time
	for name, dst := range map[string]**time.Time{"createdAt_gte": &gte, "createdAt_lte": &lte} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				if t, err = time.Parse(time.DateOnly, v); err != nil {
					return bad("%s must be an ISO-8601 date or date-time", name)
				}
			}
			*dst = &t
		}
	}
	level := q.Get("level")
	if level != "" && level != "SEVERE" && level != "HIGH" && level != "MEDIUM" && level != "LOW" {
		return bad("level must be SEVERE, HIGH, MEDIUM or LOW (in caps)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []*alertRecord
	for _, a := range s.alerts {
		if (q.Get("userId") != "" && a.UserID != q.Get("userId")) || (level != "" && a.Level != level) ||
			(q.Get("asset") != "" && a.Asset != q.Get("asset")) || (q.Get("transferReference") != "" && a.Ref != q.Get("transferReference")) ||
			(gte != nil && a.CreatedAt.Before(*gte)) || (lte != nil && a.CreatedAt.After(*lte)) {
			continue
		}
		match = append(match, a)
	}
	// Default order: alertStatusCreatedAt, which for new alerts is their creation.
	sort.SliceStable(match, func(i, j int) bool { return match[i].CreatedAt.Before(match[j].CreatedAt) })
	data := []map[string]any{}
	for i := offset; i < len(match) && (limit == 0 || len(data) < limit); i++ {
		a := match[i]
		data = append(data, map[string]any{
			"alertAmountUsd": numberOrZero(a.AmountUSD), "transactionHash": nilIfEmpty(a.Tx), "exposureType": a.Exposure,
			"alertStatus": "Unreviewed", "transferReportedAt": a.ReportedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
			"alertIdentifier": a.ID, "transferReference": nilIfEmpty(a.Ref), "alertStatusCreatedBy": nil, "valid": true,
			"transferCountWindow": nil, "ruleAsset": nil, "direction": strings.ToUpper(a.Direction),
			"timestamp": a.Timestamp.UTC().Format(time.RFC3339), "period": nil, "windowSize": nil,
			"transferredValuePercentage": json.Number("100.0"), "level": a.Level, "service": nilIfEmpty(a.Service),
			"alertStatusCreatedAt": a.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), "userId": a.UserID,
			"transferCount": nil, "createdAt": a.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), "alertType": a.Type,
			"transferOutputAddress": nilIfEmpty(a.OutputAddress), "validity": "VALID", "category": a.Category.Name,
			"transactionIndex": a.Idx, "asset": a.Asset, "rule": a.Rule.Text(a.Direction), "minThreshold": a.Rule.MinUSD,
			"maxThreshold": nil, "categoryId": a.Category.ID,
		})
	}
	return http.StatusOK, map[string]any{"total": len(match), "limit": limit, "offset": offset, "data": data}
}

func (s *Sim) listAssets(*http.Request, []byte) (int, any) {
	symbols := make([]string, 0, len(assets))
	for sym := range assets {
		symbols = append(symbols, sym)
	}
	sort.Strings(symbols)
	out := make([]map[string]string, 0, len(symbols))
	for _, sym := range symbols {
		out = append(out, map[string]string{"symbol": sym, "name": assets[sym].Name})
	}
	return http.StatusOK, out
}

// --- control ---

func (s *Sim) getFaults(*http.Request, []byte) (int, any) {
	return http.StatusOK, s.Faults()
}

func (s *Sim) putFaults(_ *http.Request, body []byte) (int, any) {
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		return bad("want {\"errorRate\",\"rateLimitRate\",\"retryAfterSeconds\",\"latencyMs\",\"down\"}: %v", err)
	}
	if f.ErrorRate < 0 || f.RateLimitRate < 0 || f.ErrorRate+f.RateLimitRate > 1 || f.LatencyMillis < 0 || f.RetryAfterSeconds < 0 {
		return bad("rates must be fractions from 0 to 1 adding up to at most 1; latency and Retry-After at least 0")
	}
	s.SetFaults(f)
	return http.StatusOK, f
}

func (s *Sim) getAddresses(*http.Request, []byte) (int, any) {
	out := make([]Entity, 0, len(KnownAddresses))
	for _, e := range KnownAddresses {
		e.CategoryName = e.Category.Name
		if e.Exposure == "" {
			e.Exposure = "DIRECT"
		}
		out = append(out, e)
	}
	return http.StatusOK, map[string]any{"addresses": out}
}

func (s *Sim) postTransaction(_ *http.Request, body []byte) (int, any) {
	var req struct {
		Tx           string `json:"tx"`
		InputAddress string `json:"inputAddress"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Tx == "" || req.InputAddress == "" {
		return bad("want {\"tx\", \"inputAddress\"}")
	}
	s.SetTransactionSender(req.Tx, req.InputAddress)
	return http.StatusOK, req
}

// --- numbers ---

// decimalText reads a JSON number or numeric string as exact decimal text; empty when absent.
func decimalText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
	} else {
		s = string(raw)
	}
	if _, ok := new(big.Rat).SetString(s); !ok {
		return "", fmt.Errorf("%s is not a number", raw)
	}
	return s, nil
}

// usd is amount × price rounded half-up to cents, or nil when no price is known.
func usd(amount, asset, givenPrice string) *string {
	price := givenPrice
	if price == "" {
		price = assets[strings.ToUpper(asset)].Price
	}
	a, ok1 := new(big.Rat).SetString(amount)
	p, ok2 := new(big.Rat).SetString(price)
	if !ok1 || !ok2 {
		return nil
	}
	v := new(big.Rat).Mul(a, p).FloatString(2)
	return &v
}

// chainAmount is the sandbox chain's amount for a transfer nobody stated one for: repeatable,
// from a hash of the reference, between 0.0001 and 10.
func chainAmount(ref string) string {
	sum := md5.Sum([]byte(ref))
	n := binary.BigEndian.Uint32(sum[:4])%100000 + 1
	return new(big.Rat).SetFrac64(int64(n), 10000).FloatString(4)
}

func numberOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return json.Number(*s)
}

func numberOrZero(s string) json.Number {
	if s == "" {
		return "0"
	}
	return json.Number(s)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustTime(s string, def time.Time) time.Time {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00"} {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return def
}
