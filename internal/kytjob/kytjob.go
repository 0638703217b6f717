// Package kytjob is the Chainalysis KYT risk assessment of a verification: planning which KYT
// call a verification needs (DESIGN.md §2), accepting a request in one transaction with its
// first job, and the background pipeline that registers it with Chainalysis, polls until it is
// processed, stores its alerts and enqueues the callback. It owns the kyt_results and
// kyt_alerts tables.
//
// Every accepted requestId reaches PROCESSED or ERROR: each step is a River job inserted in the
// same transaction as the state it follows from, every step can run again harmlessly, and the
// move to a terminal state happens once, in the transaction that enqueues its one callback.
package kytjob

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
	"github.com/travelrule/enclave/webhook"
)

// API types and directions, as the VerifyVASP page writes them.
const (
	APITypeAttempt  = "ATTEMPT"
	APITypeTransfer = "TRANSFER"
	Outgoing        = "OUTGOING"
	Incoming        = "INCOMING"
)

// Hook is a test seam called at named points of the pipeline ("register", "registered",
// "summary", "processed") and of the monitoring sync ("sync", "page" after reading a page —
// with the number of its alerts for requestID —, "monitored" before committing an
// assessment's new alerts); tests use it to stop a worker
// hard at that point.
type Hook func(ctx context.Context, step, requestID string)

// Config tunes the pipeline. Zero values take the defaults shown.
type Config struct {
	// MaxAge is how long an assessment may take before it ends in ERROR with code KYT-TIMEOUT;
	// default 24h (ENCLAVE_KYT_MAX_AGE).
	MaxAge time.Duration
	// Register is the backoff of registration after a transient failure; default 1s..1m.
	Register retry.Backoff
	// Poll is the backoff of polling an unprocessed transfer; default 1s..5m
	// (ENCLAVE_KYT_POLL_MAX_INTERVAL sets the cap).
	Poll retry.Backoff
	// CallbackOnRegistered also sends a (non-terminal) callback when Chainalysis issues the
	// externalId (ENCLAVE_CALLBACK_ON_REGISTERED).
	CallbackOnRegistered bool
	// CallTimeout bounds one Chainalysis call (CHAINALYSIS_TIMEOUT), default 10s; a run of the
	// job is bounded by RunTimeout, derived from it.
	CallTimeout time.Duration
	// MonitorPage is the page size the monitoring sync asks of GET /v1/alerts; default 200.
	MonitorPage int
	// Hook, when set, is called at each step.
	Hook Hook
}

func (c *Config) defaults() {
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.Register.Base <= 0 {
		c.Register.Base = time.Second
	}
	if c.Register.Cap <= 0 {
		c.Register.Cap = time.Minute
	}
	if c.Poll.Base <= 0 {
		c.Poll.Base = time.Second
	}
	if c.Poll.Cap <= 0 {
		c.Poll.Cap = 5 * time.Minute
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = chainalysis.DefaultTimeout
	}
	if c.MonitorPage <= 0 {
		c.MonitorPage = 200
	}
}

// RunTimeout bounds one run of an assessment's job: two Chainalysis calls at their longest
// and the transactions around them. A run starts a call only with room left for it (a
// TRANSFER's three calls take two runs when Chainalysis is that slow); a call cut short by the
// deadline fails like any transient failure, and the job snoozes and tries again. River rescues
// a job of a dead process once it has run longer than this (plus a margin).
func (s *Service) RunTimeout() time.Duration { return assessment.RunTimeout(s.cfg.CallTimeout) }

// Service accepts and answers assessments; its workers run the pipeline.
type Service struct {
	api       *sqlx.DB // the API's pool: Accept, Find, List
	work      *sqlx.DB // the pipeline's pool: everything the jobs do
	verifs    *verification.Service
	reg       *network.Registry
	kyt       *chainalysis.Client
	callbacks *callback.Service
	client    *river.Client[*sql.Tx]
	accepts   *assessment.Accepts
	// terminals groups the terminal transactions of runs that end together (end).
	terminals batch.Group[terminal, error]
	cfg       Config
	log       *slog.Logger

	accepted *prometheus.CounterVec
	finished *prometheus.CounterVec
	latency  prometheus.Histogram

	monitorAlerts, monitorRuns *prometheus.CounterVec
	unsorted                   atomic.Bool // GET /v1/alerts refused sort=createdAt once
}

// NewService returns a Service that answers the API from the api pool and works the pipeline
// from the pipeline pool (they may be the same). Attach must be called with the River client
// before use.
func NewService(api, pipeline *sqlx.DB, verifs *verification.Service, reg *network.Registry, kyt *chainalysis.Client,
	callbacks *callback.Service, cfg Config, log *slog.Logger, metrics prometheus.Registerer) (*Service, error) {
	cfg.defaults()
	s := &Service{api: api, work: pipeline, verifs: verifs, reg: reg, kyt: kyt, callbacks: callbacks, cfg: cfg, log: log, accepts: assessment.NewAccepts(api, "kyt_results", acceptColumns),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_kyt_assessments_accepted_total",
			Help: "KYT assessments accepted, by API type."}, []string{"api_type"}),
		finished: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_kyt_assessments_finished_total",
			Help: "KYT assessments that reached a terminal state, by status."}, []string{"status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "enclave_kyt_assessment_duration_seconds",
			Help: "Time from accept to terminal state.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 20)}),
	}
	s.terminals.Flush = s.flushEnds
	collectors := append([]prometheus.Collector{s.accepted, s.finished, s.latency}, s.monitorMetrics()...)
	if metrics != nil {
		for _, c := range collectors {
			if err := metrics.Register(c); err != nil {
				return nil, fmt.Errorf("kytjob: register metrics: %w", err)
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

// AddWorkers registers the pipeline's workers: assessments and the monitoring sync.
func (s *Service) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &AssessWorker{S: s})
	river.AddWorker(w, &MonitorWorker{S: s})
}

// Request is the body of POST /v1/risk-assessment/chainalysis-kyt.
type Request struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
	Network          string `json:"network,omitempty" validate:"omitempty,max=64"` // bounds what a message quotes
	assessment.Keyed
}

// Accept validates a request, plans the KYT call and stores the assessment (PENDING) with its
// registration job in one transaction. It returns the new requestId, or the VerifyVASP errors:
// MISSING-VERIFICATION-UUID, NOT-FOUND-VERIFICATION, UNSUPPORTED-RISK-ASSESSMENT, BAD-REQUEST.
func (s *Service) Accept(ctx context.Context, r Request) (string, error) {
	if err := validate.Struct(r); err != nil {
		return "", err
	}
	if s.kyt == nil {
		return "", apperr.New(apperr.UnsupportedRiskAssessment, "Chainalysis KYT is not configured: the enclave has no CHAINALYSIS_KYT_API_KEY")
	}
	v, err := s.verifs.FindWithoutPayload(ctx, r.VerificationUUID) // NOT-FOUND-VERIFICATION
	if err != nil {
		return "", err
	}
	t, err := s.plan(v, r.Network)
	if err != nil {
		return "", err
	}
	requestID, sum, err := assessment.NewRequestID("chainalysis-kyt", r.IdempotencyKey, r.Body, uuid.NewString())
	if err != nil {
		return "", err
	}
	t.AcceptedAt = time.Now().UTC()

	created, err := s.accepts.Store(ctx, requestID, sum, r.Notify, acceptRow{
		RequestID: requestID, VerificationUUID: v.UUID, CounterpartyVaspID: v.CounterpartyVaspID(), APIType: t.APIType,
		UserID: t.UserID, Direction: t.Direction, Network: t.Network, Asset: t.Asset, Amount: t.Amount,
		TransferRef: nullable(t.TransferRef), OutputAddress: t.OutputAddress, Timestamp: t.Timestamp, Status: webhook.StatusPending,
		CreatedAt: t.AcceptedAt, RequestSHA256: assessment.Hex(sum), Notify: r.Notify,
	}, AssessArgs{RequestID: requestID, Target: t})
	if err != nil {
		return "", err
	}
	if created {
		s.accepted.WithLabelValues(t.APIType).Inc()
	}
	return requestID, nil
}

// acceptRow is a new kyt_results row as Accepts inserts it: keys and types of acceptColumns.
type acceptRow struct {
	RequestID          string     `json:"request_id"`
	VerificationUUID   string     `json:"verification_uuid"`
	CounterpartyVaspID string     `json:"counterparty_vasp_id"`
	APIType            string     `json:"api_type"`
	UserID             string     `json:"user_id"`
	Direction          string     `json:"direction"`
	Network            string     `json:"network"`
	Asset              string     `json:"asset"`
	Amount             string     `json:"amount"` // decimal text, read as numeric without loss
	TransferRef        *string    `json:"transfer_ref"`
	OutputAddress      string     `json:"output_address"`
	Timestamp          *time.Time `json:"timestamp"`
	Status             string     `json:"status"`
	CreatedAt          time.Time  `json:"created_at"`
	RequestSHA256      *string    `json:"request_sha256"`
	Notify             bool       `json:"notify"`
}

const acceptColumns = `request_id uuid, verification_uuid uuid, counterparty_vasp_id text, api_type text, user_id text,
	direction text, network text, asset text, amount numeric, transfer_ref text, output_address text, "timestamp" timestamptz,
	status text, created_at timestamptz, request_sha256 bytea, notify boolean`

// plan is the rule of DESIGN.md §2 applied to one verification: the KYT call to make, as the
// job will make it (AcceptedAt is the caller's to set).
func (s *Service) plan(v verification.Verification, named string) (Target, error) {
	t := Target{UserID: v.CounterpartyVaspID(), Asset: v.Asset, Amount: v.Amount, OutputAddress: v.BeneficiaryAddress}
	switch {
	case v.Role == verification.Beneficiary && !v.TxReported():
		return t, apperr.New(apperr.UnsupportedRiskAssessment, "Chainalysis KYT API for received transfer should be called after txHash is reported")
	case v.Role == verification.Originator && !v.TxReported():
		t.APIType, t.Direction = APITypeAttempt, Outgoing
	case v.Role == verification.Originator:
		t.APIType, t.Direction = APITypeTransfer, Outgoing
	default:
		t.APIType, t.Direction = APITypeTransfer, Incoming
	}

	asset, ok := s.reg.Asset(v.Asset)
	if !ok {
		return t, apperr.Bad("asset %s of the verification is not supported", v.Asset)
	}
	named = strings.TrimSpace(named)
	if named != "" {
		n, ok := s.reg.Network(named)
		if !ok {
			return t, apperr.Bad("network: %q is not supported", named)
		}
		if v.Network != "" && n.Name != v.Network {
			return t, apperr.Bad("network: %s conflicts with the verification's network %s", n.Name, v.Network)
		}
		named = n.Name
	} else {
		named = v.Network
	}
	n, err := s.reg.Resolve(asset, named)
	if err != nil {
		return t, apperr.Bad("network: %s", err.Error())
	}
	t.Network = n.Name
	if !n.ValidAddress(v.BeneficiaryAddress) {
		return t, apperr.Bad("network: the beneficiary address %q of the verification is not an address on %s", v.BeneficiaryAddress, n.Name)
	}
	if v.TxReported() && !n.ValidTxHash(v.TxHash) {
		return t, apperr.Bad("network: the verification's txHash %q is not a transaction hash on %s", v.TxHash, n.Name)
	}
	if t.APIType == APITypeTransfer {
		ref, err := n.TransferReference(v.TxHash, v.BeneficiaryAddress, v.Vout)
		if err != nil {
			return t, apperr.Bad("txHash: %s", err.Error())
		}
		t.TransferRef = ref
	} else {
		now := time.Now().UTC().Truncate(time.Millisecond)
		t.Timestamp = &now // for an ATTEMPT, the time of the call
	}
	return t, nil
}

// Terminal reports whether the assessment has reached PROCESSED or ERROR (Prefer: wait asks).
func (s *Service) Terminal(ctx context.Context, requestID string) (bool, error) {
	return assessment.ReadTerminal(ctx, s.api, "kyt_results", requestID)
}

// Find returns one assessment as its callback carries it. An unknown requestId is NOT-FOUND.
func (s *Service) Find(ctx context.Context, requestID string) (webhook.KYTResultData, error) {
	requestID, err := ids.UUID("requestId", requestID)
	if err != nil {
		return webhook.KYTResultData{}, err
	}
	var r row
	err = s.api.GetContext(ctx, &r, `SELECT `+resultColumns+` FROM kyt_results WHERE request_id = $1`, requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return webhook.KYTResultData{}, apperr.New(apperr.NotFound, "RiskAssessment(%s) is not found", requestID)
	}
	if err != nil {
		return webhook.KYTResultData{}, fmt.Errorf("find assessment %s: %w", requestID, err)
	}
	alerts, err := loadAlerts(ctx, s.api, []string{requestID})
	if err != nil {
		return webhook.KYTResultData{}, err
	}
	return r.data(alerts[requestID]), nil
}

// Filter selects assessments for List; zero values select everything.
type Filter struct {
	VerificationUUID string
	Status           string
	APIType          string
	Direction        string
	From, To         *time.Time
	Page             sqlpage.Request
}

// assessmentList is GET /v1/risk-assessment/chainalysis-kyt: newest first, each filter served by
// an index (db/schema/00008_list_indexes.sql).
var assessmentList = sqlpage.List{Name: "chainalysis-kyt", From: "kyt_results", Columns: resultColumns,
	Time: "created_at", ID: "request_id", UUIDKey: true}

// List returns one page of assessments, newest first, and how many match in all.
func (s *Service) List(ctx context.Context, f Filter) ([]webhook.KYTResultData, sqlpage.Page, error) {
	var none sqlpage.Page
	var w sqlpage.Where
	oneOf := apperr.OneOf
	if f.VerificationUUID != "" {
		id, err := ids.UUID("verificationUuid", f.VerificationUUID)
		if err != nil {
			return nil, none, err
		}
		w.Add("verification_uuid = $%d", id)
	}
	if f.Status != "" {
		if err := oneOf("status", f.Status, webhook.StatusPending, webhook.StatusRegistered, webhook.StatusProcessed, webhook.StatusError); err != nil {
			return nil, none, err
		}
		w.Add("status = $%d", strings.ToUpper(f.Status))
	}
	if f.APIType != "" {
		if err := oneOf("apiType", f.APIType, APITypeAttempt, APITypeTransfer); err != nil {
			return nil, none, err
		}
		w.Add("api_type = $%d", strings.ToUpper(f.APIType))
	}
	if f.Direction != "" {
		if err := oneOf("direction", f.Direction, Outgoing, Incoming); err != nil {
			return nil, none, err
		}
		w.Add("direction = $%d", strings.ToUpper(f.Direction))
	}
	if f.From != nil {
		w.Add("created_at >= $%d", *f.From)
	}
	if f.To != nil {
		w.Add("created_at <= $%d", *f.To)
	}
	rows, p, err := sqlpage.Select(ctx, s.api, assessmentList, w, f.Page, func(r row) sqlpage.Key { return sqlpage.Key{Time: r.CreatedAt, ID: r.RequestID} })
	if err != nil {
		return nil, p, err
	}
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.RequestID
	}
	alerts, err := loadAlerts(ctx, s.api, ids)
	if err != nil {
		return nil, none, err
	}
	out := make([]webhook.KYTResultData, len(rows))
	for i, r := range rows {
		out[i] = r.data(alerts[r.RequestID])
	}
	return out, p, nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
