// Package callback delivers signed callbacks to the VASP's backend and keeps a record of each
// delivery. It owns the callbacks table. A callback is enqueued inside the transaction that
// produced it, its payload frozen then; the row is its own delivery work (a transactional
// outbox, internal/outbox.Lane), with no job beside it. Delivery is at least once, retried on
// a schedule of growing delays, and ends DELIVERED or FAILED. A FAILED or DELIVERED callback
// can be redelivered through the API.
//
// Deliveries run on a lane of their own with its own workers: a slow or dead receiver never
// holds back screening, and a burst of screenings never starves deliveries. Only a 2xx from
// the configured URL itself counts; redirects are never followed.
package callback

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/outbox"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// Delivery statuses (internal/outbox's).
const (
	StatusPending   = outbox.Pending
	StatusDelivered = outbox.Delivered
	StatusFailed    = outbox.Failed
)

// DefaultSchedule is the wait before each delivery attempt: immediately, then 5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h. After the last attempt fails the callback is
// FAILED.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 14 * time.Hour, 20 * time.Hour, 24 * time.Hour}

// Config is where and how callbacks go.
type Config struct {
	// URL receives every callback (ENCLAVE_CALLBACK_URL).
	URL string
	// Token is sent as "Authorization: Bearer <token>" when set (ENCLAVE_CALLBACK_TOKEN).
	Token string
	// Secret signs every callback, "whsec_<base64>" (ENCLAVE_CALLBACK_SECRET).
	Secret string
	// Schedule overrides DefaultSchedule (tests shrink it).
	Schedule []time.Duration
	// Timeout bounds one delivery attempt; default 10s.
	Timeout time.Duration
	// HTTPClient defaults to a plain client. Whatever is given, redirects are not followed: a
	// 3xx is a failed attempt, and the token never goes to another URL.
	HTTPClient *http.Client
	// AfterSend, when set, is called once the receiver has acknowledged a delivery and
	// before the enclave records it: a test seam for a crash at that point.
	AfterSend func(ctx context.Context, callbackID string)
	// Workers bounds the deliveries this process makes at once (ENCLAVE_CALLBACK_WORKERS).
	Workers int
	// Poll is how often the lane looks for due callbacks that nothing woke it for: those of
	// other replicas, retries coming due, and any left by a process that died. Default 20ms.
	Poll time.Duration
}

// Service keeps callback records and delivers them.
type Service struct {
	api        *sqlx.DB // the API's pool: List, Redeliver
	work       *sqlx.DB // the delivery lane's pool: deliveries
	cfg        Config
	log        *slog.Logger
	lane       *outbox.Lane[Record]
	poster     *signedhttp.Client
	deliveries *prometheus.CounterVec
	// attach returns the sealed data a callback adds when delivered (AttachResult).
	attach func(ctx context.Context, verificationUUID string) (json.RawMessage, error)
	// Deliveries running at once record their success in batches: one round trip (and one
	// commit) for all that end together.
	record batch.Group[delivered, struct{}]
}

// NewService returns a Service that answers the API from the api pool and delivers from the
// delivery lane's pool. Start starts the deliveries.
func NewService(api, delivery *sqlx.DB, cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if cfg.Schedule == nil {
		cfg.Schedule = DefaultSchedule
	}
	if len(cfg.Schedule) == 0 {
		return nil, errors.New("callback: the schedule needs at least one attempt")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	cfg.Workers = cmp.Or(cfg.Workers, 100)
	cfg.Poll = cmp.Or(cfg.Poll, 20*time.Millisecond)
	// Connections to the one receiver are kept alive across concurrent deliveries; redirects
	// are never followed.
	s := &Service{api: api, work: delivery, cfg: cfg, log: log, poster: signedhttp.New(cfg.HTTPClient, cfg.Timeout), deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "enclave_callback_deliveries_total",
		Help: "Callback delivery attempts by outcome (delivered, retry, failed).",
	}, []string{"outcome"})}
	s.record.Flush = s.recordDelivered
	s.lane = &outbox.Lane[Record]{DB: delivery, Table: "callbacks", Columns: recordColumns, Workers: cfg.Workers,
		Lease: s.JobTimeout(), Poll: cfg.Poll, Deliver: s.attempt, Log: log}
	if reg != nil {
		if err := reg.Register(s.deliveries); err != nil {
			return nil, fmt.Errorf("callback: register metrics: %w", err)
		}
	}
	return s, nil
}

// Start starts delivering: until Stop, due callbacks are claimed and delivered. running, when
// set, counts the deliveries this process makes.
func (s *Service) Start(running prometheus.Gauge) {
	s.lane.Running = running
	s.lane.Start()
}

// LaneStates counts the PENDING callbacks of every replica by the states /metrics shows them
// in, as River's jobs are: available (due, waiting for a worker), running (claimed, the
// attempt not yet recorded) and scheduled (waiting for their next attempt).
func (s *Service) LaneStates(ctx context.Context) (map[string]int, error) {
	var c struct {
		Available int `db:"available"`
		Running   int `db:"running"`
		Scheduled int `db:"scheduled"`
	}
	err := s.api.GetContext(ctx, &c, `SELECT count(*) FILTER (WHERE next_attempt_at <= now()) AS available,
		count(*) FILTER (WHERE next_attempt_at > now() AND in_flight) AS running,
		count(*) FILTER (WHERE next_attempt_at > now() AND NOT in_flight) AS scheduled
		FROM callbacks WHERE status = 'PENDING'`)
	return map[string]int{"available": c.Available, "running": c.Running, "scheduled": c.Scheduled}, err
}

// Stop stops claiming callbacks and waits, until ctx is done, for the deliveries running.
func (s *Service) Stop(ctx context.Context) error { return s.lane.Stop(ctx) }

// StopAndCancel stops claiming and cancels the deliveries running; each is attempted again,
// after its lease, by whichever process claims it.
func (s *Service) StopAndCancel(ctx context.Context) error { return s.lane.StopAndCancel(ctx) }

// Wake has the lane look for due callbacks now: called once a transaction that enqueued one
// has committed, so a callback does not wait for the next poll.
func (s *Service) Wake() { s.lane.Wake() }

// New is a callback to enqueue.
type New struct {
	RequestID string
	Type      string
	// Terminal marks the one callback that reports an assessment's final state; a second
	// terminal callback for the same request is refused by the database.
	Terminal bool
	// VerificationUUID names the verification an exchange callback is about (VERIFICATION_RESULT,
	// TX_REPORT, ERROR_REPORT, VERIFICATION_REQUEST); one VERIFICATION_RESULT each, enforced by
	// the database.
	VerificationUUID string
	// AttachResult adds, when delivered, the beneficiary IVMS101 of the verification's result
	// as data.ivms101.beneficiary: personal data is never frozen into the payload in plain text.
	AttachResult bool
	Payload      any // marshalled now and frozen: {"callbackType", "data"} is built by the caller
}

// AttachWith sets how a callback with AttachResult gets its beneficiary IVMS101 when delivered:
// opened from the sealed verification by the package that owns it.
func (s *Service) AttachWith(f func(ctx context.Context, verificationUUID string) (json.RawMessage, error)) {
	s.attach = f
}

// Enqueue records a callback, due now, in tx, the transaction that produced it. The caller
// calls Wake once tx has committed.
func (s *Service) Enqueue(ctx context.Context, tx *sqlx.Tx, n New) error {
	return s.EnqueueMany(ctx, tx, []New{n})
}

// EnqueueMany records callbacks, due now, in tx, in one statement: for a transaction that ends
// many assessments at once. The caller calls Wake once tx has committed.
func (s *Service) EnqueueMany(ctx context.Context, tx *sqlx.Tx, ns []New) error {
	if len(ns) == 0 {
		return nil
	}
	ids, reqs, vers := make([]string, len(ns)), make([]*string, len(ns)), make([]*string, len(ns))
	attach, terminal := make([]bool, len(ns)), make([]bool, len(ns))
	types, payloads := make([]string, len(ns)), make([]string, len(ns))
	for i, n := range ns {
		body, err := json.Marshal(n.Payload)
		if err != nil {
			return fmt.Errorf("callback payload: %w", err)
		}
		ids[i], types[i], payloads[i], attach[i], terminal[i] = uuid.NewString(), n.Type, string(body), n.AttachResult, n.Terminal
		if n.RequestID != "" {
			reqs[i] = &n.RequestID
		}
		if n.VerificationUUID != "" {
			vers[i] = &n.VerificationUUID
		}
	}
	// The payload goes as text to the json column: the bytes signed and sent are exactly those
	// marshalled here, key order included.
	if _, err := tx.ExecContext(ctx, `INSERT INTO callbacks (id, request_id, verification_uuid, attach_result, callback_type, terminal,
		payload, status, next_attempt_at)
		SELECT id, request_id, verification_uuid, attach_result, callback_type, terminal, payload::json, 'PENDING', now()
		FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bool[], $5::text[], $6::bool[], $7::text[])
			AS u(id, request_id, verification_uuid, attach_result, callback_type, terminal, payload)`,
		ids, reqs, vers, attach, types, terminal, payloads); err != nil {
		if len(ns) == 1 {
			return fmt.Errorf("insert callback for %s: %w", ns[0].RequestID, err)
		}
		return fmt.Errorf("insert %d callbacks: %w", len(ns), err)
	}
	return nil
}

// Record is a callback as the API shows it.
type Record struct {
	ID        string  `json:"id" db:"id"`
	RequestID *string `json:"requestId" db:"request_id"`
	// VerificationUUID names the verification of an exchange callback.
	VerificationUUID *string `json:"verificationUuid" db:"verification_uuid"`
	AttachResult     bool    `json:"-" db:"attach_result"`
	CallbackType     string  `json:"callbackType" db:"callback_type"`
	outbox.Delivery
	Payload json.RawMessage `json:"payload" db:"payload"`
}

func (r *Record) fill() { r.Fill() }

const recordColumns = `id, request_id, verification_uuid, attach_result, callback_type, ` + outbox.Columns + `, payload`

// Filter selects callbacks for List.
type Filter struct {
	Status           string
	RequestID        string
	VerificationUUID string
	Page             sqlpage.Request
}

// callbackList is GET /v1/callbacks: newest first, each filter served by an index
// (db/schema/00008_list_indexes.sql).
var callbackList = sqlpage.List{Name: "callbacks", From: "callbacks", Columns: recordColumns, Time: "created_at", ID: "id", UUIDKey: true}

// where is the SQL condition of f's filters, or BAD-REQUEST naming the one at fault.
func (f Filter) where() (sqlpage.Where, error) {
	var w sqlpage.Where
	if f.Status != "" {
		st := strings.ToUpper(f.Status)
		if st != StatusPending && st != StatusDelivered && st != StatusFailed {
			return w, apperr.Bad("status: want PENDING, DELIVERED or FAILED, got %q", f.Status)
		}
		w.Add("status = $%d", st)
	}
	if f.RequestID != "" {
		id, err := ids.UUID("requestId", f.RequestID)
		if err != nil {
			return w, err
		}
		w.Add("request_id = $%d", id)
	}
	if f.VerificationUUID != "" {
		id, err := ids.UUID("verificationUuid", f.VerificationUUID)
		if err != nil {
			return w, err
		}
		w.Add("verification_uuid = $%d", id)
	}
	return w, nil
}

// List returns one page of callbacks, newest first, and how many match in all.
func (s *Service) List(ctx context.Context, f Filter) ([]Record, sqlpage.Page, error) {
	w, err := f.where()
	if err != nil {
		return nil, sqlpage.Page{}, err
	}
	out, p, err := sqlpage.Select(ctx, s.api, callbackList, w, f.Page, func(r Record) sqlpage.Key { return sqlpage.Key{Time: r.Created, ID: r.ID} })
	if err != nil {
		return nil, p, err
	}
	for i := range out {
		out[i].fill()
	}
	return out, p, nil
}

// outboxTable is the callbacks table as internal/outbox redelivers it: a DELIVERED callback
// may be sent again (the receiver lost it), with the same webhook-id and frozen payload.
var outboxTable = outbox.Table{Name: "callbacks", Noun: "Callback", Columns: recordColumns, Replay: true}

// MaxRedeliver bounds one bulk redelivery (RedeliverWhere): a filter that matches more
// redelivers the newest MaxRedeliver and says more are left.
const MaxRedeliver = 1000

// Redeliver starts a callback's schedule again, from its first attempt: a FAILED one, or a
// DELIVERED one that the receiver asks for again (a new attempt with the same webhook-id and
// payload; the row counts the redelivery). A PENDING one is BAD-REQUEST (it is being
// delivered); an unknown id is NOT-FOUND. Each redelivery is logged (the API's audit; the
// console keeps its own audit log too).
func (s *Service) Redeliver(ctx context.Context, id string) (Record, error) {
	var r Record
	was, err := outbox.Redeliver(ctx, s.api, nil, outboxTable, id, &r, nil)
	r.fill()
	if err == nil {
		s.Wake()
		s.log.InfoContext(ctx, "callback redelivered", "callbackId", r.ID, "previousStatus", was, "callbackType", r.CallbackType,
			"redeliveries", r.Redeliveries)
	}
	return r, err
}

// RedeliverWhere redelivers, as Redeliver does one, the FAILED and DELIVERED callbacks that f
// selects (its Page is ignored), at most max (1 to MaxRedeliver) newest first, and says
// whether more matched. f must name at least one filter; a bad one is BAD-REQUEST naming it.
func (s *Service) RedeliverWhere(ctx context.Context, f Filter, max int) ([]outbox.Redelivered, bool, error) {
	if max < 1 || max > MaxRedeliver {
		return nil, false, apperr.Bad("max: want a whole number from 1 to %d, got %d", MaxRedeliver, max)
	}
	w, err := f.where()
	if err != nil {
		return nil, false, err
	}
	done, more, err := outbox.RedeliverWhere(ctx, s.api, nil, outboxTable, w, max)
	if err != nil {
		return nil, false, err
	}
	s.Wake()
	// The audit: what was asked, how many it started, and each one (ids are not personal data).
	started := make([]string, len(done))
	for i, d := range done {
		started[i] = d.ID + ":" + d.Status
	}
	s.log.WarnContext(ctx, "callbacks redelivered by filter", "status", f.Status, "requestId", f.RequestID,
		"verificationUuid", f.VerificationUUID, "max", max, "redelivered", len(done), "more", more, "callbacks", strings.Join(started, ","))
	return done, more, nil
}

// JobTimeout bounds one delivery: the attempt and the database work around it. It is the
// lease of a claimed callback: one not recorded by then is attempted again.
func (s *Service) JobTimeout() time.Duration { return s.cfg.Timeout + 5*time.Second }

// attempt is the lane's delivery of one claimed callback. A failure of the enclave itself (its
// database) leaves the callback PENDING, attempted again when its lease ends.
func (s *Service) attempt(ctx context.Context, r Record) {
	if err := s.deliver(ctx, r); err != nil {
		s.log.Warn("callback delivery not recorded; it will be attempted again", "callbackId", r.ID,
			"retryIn", s.JobTimeout().String(), "err", err.Error())
	}
}

// delivered is a successful attempt to record.
type delivered struct {
	id               string
	attempts, status int
}

// recordDelivered records the successful attempts of concurrent deliveries in one statement
// and one commit.
func (s *Service) recordDelivered(ctx context.Context, ds []delivered) ([]struct{}, error) {
	ids, attempts, codes := make([]string, len(ds)), make([]int32, len(ds)), make([]int32, len(ds))
	for i, d := range ds {
		ids[i], attempts[i], codes[i] = d.id, int32(d.attempts), int32(d.status)
	}
	_, err := s.work.ExecContext(ctx, `UPDATE callbacks c SET status = 'DELIVERED', attempts = u.attempts,
		last_status_code = u.code, last_error = NULL, delivered_at = now(), next_attempt_at = NULL, in_flight = false
		FROM unnest($1::uuid[], $2::int[], $3::int[]) AS u(id, attempts, code)
		WHERE c.id = u.id AND c.status = 'PENDING'`, ids, attempts, codes)
	return make([]struct{}, len(ds)), err
}

// deliver makes one delivery attempt of r and records it: DELIVERED, FAILED after its last
// attempt, or PENDING until the next attempt is due. An error is a failure to record it.
func (s *Service) deliver(ctx context.Context, r Record) error {
	if r.Status != StatusPending {
		return nil // delivered (or given up) by an earlier run
	}
	body := []byte(r.Payload)
	if r.AttachResult && r.VerificationUUID != nil {
		var err error
		if body, err = s.withResult(ctx, *r.VerificationUUID, body); err != nil {
			return fmt.Errorf("callback %s: %w", r.ID, err)
		}
	}
	status, retryAfter, derr := s.post(ctx, r.ID, body)
	attempts := r.Attempts + 1
	if derr == nil {
		if s.cfg.AfterSend != nil {
			s.cfg.AfterSend(ctx, r.ID)
		}
		if _, err := s.record.Do(ctx, delivered{r.ID, attempts, status}); err != nil {
			return fmt.Errorf("record delivery of callback %s: %w", r.ID, err)
		}
		s.deliveries.WithLabelValues("delivered").Inc()
		return nil
	}
	var code *int
	if status != 0 {
		code = &status
	}
	if attempts >= len(s.cfg.Schedule) {
		if _, err := s.work.ExecContext(ctx, `UPDATE callbacks SET status = 'FAILED', attempts = $2, last_status_code = $3, last_error = $4,
			next_attempt_at = NULL, in_flight = false WHERE id = $1 AND status = 'PENDING'`, r.ID, attempts, code, derr.Error()); err != nil {
			return fmt.Errorf("record failed delivery of callback %s: %w", r.ID, err)
		}
		s.deliveries.WithLabelValues("failed").Inc()
		s.log.Warn("callback FAILED after its last attempt", "callbackId", r.ID, "requestId", r.RequestID, "attempts", attempts, "err", derr.Error())
		return nil
	}
	wait := max(retry.Jitter(s.cfg.Schedule[attempts], 0.1), retryAfter, time.Millisecond)
	if _, err := s.work.ExecContext(ctx, `UPDATE callbacks SET attempts = $2, last_status_code = $3, last_error = $4,
		next_attempt_at = now() + $5 * interval '1 microsecond', in_flight = false WHERE id = $1 AND status = 'PENDING'`,
		r.ID, attempts, code, derr.Error(), wait.Microseconds()); err != nil {
		return fmt.Errorf("record failed delivery of callback %s: %w", r.ID, err)
	}
	s.deliveries.WithLabelValues("retry").Inc()
	s.log.Info("callback delivery failed; will retry", "callbackId", r.ID, "attempt", attempts, "retryIn", wait.String(), "err", derr.Error())
	return nil
}

// withResult adds the verification's beneficiary IVMS101 to a frozen payload as
// data.ivms101.beneficiary, opened only for the request that carries it.
func (s *Service) withResult(ctx context.Context, verificationUUID string, payload []byte) ([]byte, error) {
	if s.attach == nil {
		return nil, errors.New("no source of the sealed result is attached")
	}
	beneficiary, err := s.attach(ctx, verificationUUID)
	if err != nil || len(beneficiary) == 0 {
		return payload, err
	}
	var cb struct {
		CallbackType string                     `json:"callbackType"`
		Data         map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(payload, &cb); err != nil {
		return nil, fmt.Errorf("frozen payload: %w", err)
	}
	ivms, err := json.Marshal(map[string]json.RawMessage{"beneficiary": beneficiary})
	if err != nil {
		return nil, err
	}
	cb.Data["ivms101"] = ivms
	return json.Marshal(cb)
}

// post sends one callback. It returns the HTTP status (0 if none), any Retry-After, and an
// error unless the answer was 2xx.
func (s *Service) post(ctx context.Context, id string, body []byte) (int, time.Duration, error) {
	a, err := s.poster.Post(ctx, signedhttp.Request{URL: s.cfg.URL, Secret: s.cfg.Secret, ID: id, Token: s.cfg.Token, Body: body})
	return a.Status, a.RetryAfter, err
}
