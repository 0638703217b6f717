// Package screening is the address screening assessment of a verification: the Chainalysis
// Address Screening (Entities API) risk of the counterparty's wallet address (DESIGN.md §2),
// accepted in one transaction with its job, screened in the background — register the
// address, read its risk, register again after "Entity not found" — and stored with its one
// terminal callback, CHAINALYSIS_ADDRESS_SCREENING_RESULT. It owns the screening_results table.
//
// It is the sibling of internal/kytjob: neither imports the other; what both need (keyed
// accept, the meaning of a failed call, the terminal notification) lives in internal/assessment.
package screening

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
	"github.com/travelrule/enclave/webhook"
)

// Route names the accept route in Idempotency-Key ids.
const route = "chainalysis-address-screening"

// Risk values, as the Entities API writes them.
var risks = []string{"Severe", "High", "Medium", "Low"}

// Hook is a test seam called at named points of the job ("register", "registered",
// "summary" (the answer read, not yet stored), "processed"); tests use it to stop a worker hard at that point.
type Hook func(ctx context.Context, step, requestID string)

// Config tunes the screening job. Zero values take the defaults shown.
type Config struct {
	// MaxAge is how long a screening may take before it ends in ERROR with code
	// ADDRESS-SCREENING-TIMEOUT; default 24h (ENCLAVE_KYT_MAX_AGE, shared with KYT).
	MaxAge time.Duration
	// Retry is the backoff after a transient failure or "Entity not found"; default 1s..1m.
	Retry retry.Backoff
	// Poll is the backoff while the answer is a legacy PENDING / IN_PROGRESS; default 1s..1m.
	Poll retry.Backoff
	// CallTimeout bounds one Chainalysis call (CHAINALYSIS_TIMEOUT), default 10s.
	CallTimeout time.Duration
	Hook        Hook
}

func (c *Config) defaults() {
	c.MaxAge = max(c.MaxAge, 0)
	if c.MaxAge == 0 {
		c.MaxAge = 24 * time.Hour
	}
	for _, b := range []*retry.Backoff{&c.Retry, &c.Poll} {
		if b.Base <= 0 {
			b.Base = time.Second
		}
		if b.Cap <= 0 {
			b.Cap = time.Minute
		}
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = chainalysis.DefaultTimeout
	}
}

// Service accepts and answers address screenings; its worker screens them.
type Service struct {
	api, work *sqlx.DB
	verifs    *verification.Service
	risk      *chainalysis.Client // nil when CHAINALYSIS_RISK_API_KEY is not set
	callbacks *callback.Service
	client    *river.Client[*sql.Tx]
	accepts   *assessment.Accepts
	cfg       Config
	log       *slog.Logger

	accepted prometheus.Counter
	finished *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewService returns a Service answering the API from the api pool and working from the
// pipeline pool. risk may be nil: screening is then refused as not configured. Attach must be
// called with the River client before use.
func NewService(api, pipeline *sqlx.DB, verifs *verification.Service, risk *chainalysis.Client, callbacks *callback.Service,
	cfg Config, log *slog.Logger, metrics prometheus.Registerer) (*Service, error) {
	cfg.defaults()
	s := &Service{api: api, work: pipeline, verifs: verifs, risk: risk, callbacks: callbacks, cfg: cfg, log: log, accepts: assessment.NewAccepts(api, "screening_results", acceptColumns),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "enclave_screenings_accepted_total",
			Help: "Address screenings accepted."}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_screenings_finished_total",
			Help: "Address screenings that reached a terminal state, by status and risk."}, []string{"status", "risk"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "enclave_screenings_duration_seconds",
			Help: "Time from accept to terminal state of an address screening.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 20)}),
	}
	if metrics != nil {
		for _, c := range []prometheus.Collector{s.accepted, s.finished, s.latency} {
			if err := metrics.Register(c); err != nil {
				return nil, fmt.Errorf("screening: register metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Attach gives the service the River client it inserts jobs with.
func (s *Service) Attach(c *river.Client[*sql.Tx]) {
	s.client = c
	s.accepts.Attach(c)
}

// AddWorkers registers the screening worker.
func (s *Service) AddWorkers(w *river.Workers) { river.AddWorker(w, &Worker{S: s}) }

// RunTimeout bounds one run of a screening's job: two calls and the transactions around them.
func (s *Service) RunTimeout() time.Duration { return assessment.RunTimeout(s.cfg.CallTimeout) }

// acceptRow is a new screening_results row as Accepts inserts it: keys and types of
// acceptColumns.
type acceptRow struct {
	RequestID          string    `json:"request_id"`
	VerificationUUID   string    `json:"verification_uuid"`
	CounterpartyVaspID string    `json:"counterparty_vasp_id"`
	Address            string    `json:"address"`
	Status             string    `json:"status"`
	CreatedAt          time.Time `json:"created_at"`
	RequestSHA256      *string   `json:"request_sha256"`
	Notify             bool      `json:"notify"`
}

const acceptColumns = `request_id uuid, verification_uuid uuid, counterparty_vasp_id text, address text, status text,
	created_at timestamptz, request_sha256 bytea, notify boolean`

// Request is the body of POST /v1/risk-assessment/chainalysis-address-screening.
type Request struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
	assessment.Keyed
}

// Accept validates a request, picks the counterparty's address and stores the screening
// (PENDING) with its job in one transaction. Errors are those of the KYT route where they
// apply — MISSING-VERIFICATION-UUID, NOT-FOUND-VERIFICATION, BAD-REQUEST — and
// UNSUPPORTED-RISK-ASSESSMENT when screening is not configured or there is no address to screen.
func (s *Service) Accept(ctx context.Context, r Request) (string, error) {
	if err := validate.Struct(r); err != nil {
		return "", err
	}
	if s.risk == nil {
		return "", apperr.New(apperr.UnsupportedRiskAssessment,
			"Chainalysis address screening is not configured: the enclave has no CHAINALYSIS_RISK_API_KEY")
	}
	v, err := s.verifs.FindWithoutPayload(ctx, r.VerificationUUID)
	if err != nil {
		return "", err
	}
	address := v.BeneficiaryAddress
	if v.Role == verification.Beneficiary {
		address = v.OriginatorAddress
		if address == "" {
			return "", apperr.New(apperr.UnsupportedRiskAssessment,
				"Chainalysis address screening needs the originator's wallet address, and the verification has none (payload.ivms101.originator.accountNumber[0])")
		}
	}
	requestID, sum, err := assessment.NewRequestID(route, r.IdempotencyKey, r.Body, uuid.NewString())
	if err != nil {
		return "", err
	}
	created, err := s.accepts.Store(ctx, requestID, sum, r.Notify, acceptRow{
		RequestID: requestID, VerificationUUID: v.UUID, CounterpartyVaspID: v.CounterpartyVaspID(), Address: address,
		Status: assessment.StatusPending, CreatedAt: time.Now().UTC(), RequestSHA256: assessment.Hex(sum), Notify: r.Notify,
	}, Args{RequestID: requestID, Address: address, AcceptedAt: time.Now().UTC()})
	if err != nil {
		return "", err
	}
	if created {
		s.accepted.Inc()
	}
	return requestID, nil
}

// Find returns one screening as its callback carries it; an unknown requestId is NOT-FOUND.
func (s *Service) Find(ctx context.Context, requestID string) (webhook.ScreeningResultData, error) {
	requestID, err := ids.UUID("requestId", requestID)
	if err != nil {
		return webhook.ScreeningResultData{}, err
	}
	var r row
	err = s.api.GetContext(ctx, &r, `SELECT `+columns+` FROM screening_results WHERE request_id = $1`, requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.ScreeningResultData{}, apperr.New(apperr.NotFound, "AddressScreening(%s) is not found", requestID)
	}
	if err != nil {
		return webhook.ScreeningResultData{}, fmt.Errorf("find screening %s: %w", requestID, err)
	}
	return r.data(), nil
}

// Terminal reports whether the screening has reached PROCESSED or ERROR (Prefer: wait asks).
func (s *Service) Terminal(ctx context.Context, requestID string) (bool, error) {
	return assessment.ReadTerminal(ctx, s.api, "screening_results", requestID)
}

// Filter selects screenings for List; zero values select everything.
type Filter struct {
	VerificationUUID string
	Status           string
	Risk             string
	From, To         *time.Time
	Page             sqlpage.Request
}

// screeningList is GET /v1/risk-assessment/chainalysis-address-screening: newest first, each
// filter served by an index (db/schema/00008_list_indexes.sql).
var screeningList = sqlpage.List{Name: "chainalysis-address-screening", From: "screening_results", Columns: columns,
	Time: "created_at", ID: "request_id", UUIDKey: true}

// List returns one page of screenings, newest first, and how many match in all.
func (s *Service) List(ctx context.Context, f Filter) ([]webhook.ScreeningResultData, sqlpage.Page, error) {
	var none sqlpage.Page
	var w sqlpage.Where
	if f.VerificationUUID != "" {
		id, err := ids.UUID("verificationUuid", f.VerificationUUID)
		if err != nil {
			return nil, none, err
		}
		w.Add("verification_uuid = $%d", id)
	}
	if f.Status != "" {
		if err := apperr.OneOf("status", f.Status, assessment.StatusPending, assessment.StatusRegistered,
			assessment.StatusProcessed, assessment.StatusError); err != nil {
			return nil, none, err
		}
		w.Add("status = $%d", strings.ToUpper(f.Status))
	}
	if f.Risk != "" {
		if err := apperr.OneOf("risk", f.Risk, risks...); err != nil {
			return nil, none, err
		}
		w.Add("lower(risk) = lower($%d)", f.Risk)
	}
	if f.From != nil {
		w.Add("created_at >= $%d", *f.From)
	}
	if f.To != nil {
		w.Add("created_at <= $%d", *f.To)
	}
	rows, p, err := sqlpage.Select(ctx, s.api, screeningList, w, f.Page, func(r row) sqlpage.Key { return sqlpage.Key{Time: r.CreatedAt, ID: r.RequestID} })
	if err != nil {
		return nil, p, err
	}
	out := make([]webhook.ScreeningResultData, len(rows))
	for i, r := range rows {
		out[i] = r.data()
	}
	return out, p, nil
}
