// Package callback delivers signed callbacks to the VASP's backend and keeps a record of each
// delivery. It owns the callbacks table. A callback is enqueued inside the transaction that
// produced it, with its delivery job, its payload frozen then; delivery is at least once,
// retried on a schedule of growing delays, and ends DELIVERED or FAILED. A FAILED callback can
// be redelivered through the API.
//
// Deliveries run on a lane of their own, the River queue Queue with its own workers: a slow or
// dead receiver never holds back screening, and a burst of screenings never starves
// deliveries. Only a 2xx from the configured URL itself counts; redirects are never followed.
package callback

import (
	"context"
	"database/sql"
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
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/outbox"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// Queue is the River queue deliveries run on, apart from the assessments' queue.
const Queue = "callbacks"

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
}

// Service keeps callback records and delivers them.
type Service struct {
	api        *sqlx.DB // the API's pool: List, Redeliver
	work       *sqlx.DB // the delivery lane's pool: deliveries
	cfg        Config
	log        *slog.Logger
	client     *river.Client[*sql.Tx]
	poster     *signedhttp.Client
	deliveries *prometheus.CounterVec
	// attach returns the sealed data a callback adds when delivered (AttachResult).
	attach func(ctx context.Context, verificationUUID string) (json.RawMessage, error)
	// Deliveries running at once read their callbacks, and record their success, in batches:
	// one round trip (and one commit) for all that arrive together.
	load   batch.Group[string, Record]
	record batch.Group[delivered, struct{}]
}

// NewService returns a Service that answers the API from the api pool and delivers from the
// delivery lane's pool. Attach must be called with the River client before use.
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
	// Connections to the one receiver are kept alive across concurrent deliveries; redirects
	// are never followed.
	s := &Service{api: api, work: delivery, cfg: cfg, log: log, poster: signedhttp.New(cfg.HTTPClient, cfg.Timeout), deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "enclave_callback_deliveries_total",
		Help: "Callback delivery attempts by outcome (delivered, retry, failed).",
	}, []string{"outcome"})}
	s.load.Flush, s.record.Flush = s.loadMany, s.recordDelivered
	if reg != nil {
		if err := reg.Register(s.deliveries); err != nil {
			return nil, fmt.Errorf("callback: register metrics: %w", err)
		}
	}
	return s, nil
}

// Attach gives the service the River client it inserts delivery jobs with.
func (s *Service) Attach(c *river.Client[*sql.Tx]) { s.client = c }

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

// Enqueue records a callback and its delivery job in tx, the transaction that produced it.
func (s *Service) Enqueue(ctx context.Context, tx *sqlx.Tx, n New) error {
	body, err := json.Marshal(n.Payload)
	if err != nil {
		return fmt.Errorf("callback payload: %w", err)
	}
	id := uuid.NewString()
	var reqID, verID *string
	if n.RequestID != "" {
		reqID = &n.RequestID
	}
	if n.VerificationUUID != "" {
		verID = &n.VerificationUUID
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO callbacks (id, request_id, verification_uuid, attach_result, callback_type, terminal, payload, status)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING')`, id, reqID, verID, n.AttachResult, n.Type, n.Terminal, string(body)); err != nil {
		return fmt.Errorf("insert callback for %s: %w", n.RequestID, err)
	}
	if _, err := s.client.InsertTx(ctx, tx.Tx, DeliverArgs{CallbackID: id}, nil); err != nil {
		return fmt.Errorf("insert delivery job for callback %s: %w", id, err)
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
var outboxTable = outbox.Table{Name: "callbacks", Noun: "Callback", Columns: recordColumns, Replay: true,
	Job: func(id string) river.JobArgs { return DeliverArgs{CallbackID: id} }}

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
	was, err := outbox.Redeliver(ctx, s.api, s.client, outboxTable, id, &r, nil)
	r.fill()
	if err == nil {
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
	done, more, err := outbox.RedeliverWhere(ctx, s.api, s.client, outboxTable, w, max)
	if err != nil {
		return nil, false, err
	}
	// The audit: what was asked, how many it started, and each one (ids are not personal data).
	started := make([]string, len(done))
	for i, d := range done {
		started[i] = d.ID + ":" + d.Status
	}
	s.log.WarnContext(ctx, "callbacks redelivered by filter", "status", f.Status, "requestId", f.RequestID,
		"verificationUuid", f.VerificationUUID, "max", max, "redelivered", len(done), "more", more, "callbacks", strings.Join(started, ","))
	return done, more, nil
}

// DeliverArgs is the job that delivers one callback.
type DeliverArgs struct {
	CallbackID string `json:"callbackId"`
}

// Kind is stable across deploys: never rename it.
func (DeliverArgs) Kind() string { return "callback_deliver" }

// InsertOpts puts deliveries on their own queue and lets an undeliverable job be retried for
// as long as the schedule runs: failures of the database itself are retried by River, HTTP
// failures are snoozed by the worker.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 100}
}

// DeliverWorker works DeliverArgs.
type DeliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	S *Service
}

// Timeout bounds one delivery attempt, database work included.
func (w *DeliverWorker) Timeout(*river.Job[DeliverArgs]) time.Duration { return w.S.JobTimeout() }

// JobTimeout bounds one delivery job: the attempt and the database work around it.
func (s *Service) JobTimeout() time.Duration { return s.cfg.Timeout + 5*time.Second }

// NextRetry retries database failures quickly; HTTP failures never reach River as errors.
func (w *DeliverWorker) NextRetry(j *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(retry.Backoff{Base: 2 * time.Second, Cap: time.Minute}.Delay(j.Attempt - 1))
}

// Work makes one delivery attempt.
func (w *DeliverWorker) Work(ctx context.Context, j *river.Job[DeliverArgs]) error {
	r, err := w.S.load.Do(ctx, j.Args.CallbackID)
	if err != nil {
		return fmt.Errorf("load callback %s: %w", j.Args.CallbackID, err)
	}
	if r.ID == "" {
		return river.JobCancel(fmt.Errorf("callback %s does not exist", j.Args.CallbackID))
	}
	return w.S.deliver(ctx, r)
}

// loadMany reads the callbacks of concurrent deliveries in one query; a missing one is the
// zero Record, with no ID.
func (s *Service) loadMany(ctx context.Context, ids []string) ([]Record, error) {
	var rows []Record
	if err := s.work.SelectContext(ctx, &rows, `SELECT `+recordColumns+` FROM callbacks WHERE id = ANY($1::uuid[])`, ids); err != nil {
		return nil, err
	}
	byID := make(map[string]Record, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	out := make([]Record, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	return out, nil
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
		last_status_code = u.code, last_error = NULL, delivered_at = now()
		FROM unnest($1::uuid[], $2::int[], $3::int[]) AS u(id, attempts, code)
		WHERE c.id = u.id AND c.status = 'PENDING'`, ids, attempts, codes)
	return make([]struct{}, len(ds)), err
}

// EnsureDelivery makes sure the terminal callback of requestID, while still PENDING, has a
// delivery job, and inserts one if it has none. The transaction that enqueues a callback
// inserts its job, so this finds one but for callbacks enqueued by a release that delivered
// terminal callbacks from the assessment's own job: an assessment job that finds its
// assessment terminal calls it, and no callback is left without a job after an upgrade.
func (s *Service) EnsureDelivery(ctx context.Context, requestID string) error {
	tx, err := s.work.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var id string
	err = tx.GetContext(ctx, &id, `SELECT id FROM callbacks WHERE request_id = $1 AND terminal AND status = 'PENDING' FOR UPDATE`, requestID)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // delivered or given up
	}
	if err != nil {
		return fmt.Errorf("load terminal callback of %s: %w", requestID, err)
	}
	var queued bool
	if err := tx.GetContext(ctx, &queued, `SELECT EXISTS (SELECT 1 FROM river_job WHERE kind = $1
		AND state IN ('available', 'pending', 'retryable', 'running', 'scheduled') AND args->>'callbackId' = $2)`,
		DeliverArgs{}.Kind(), id); err != nil {
		return fmt.Errorf("look for the delivery job of callback %s: %w", id, err)
	}
	if !queued {
		if _, err := s.client.InsertTx(ctx, tx.Tx, DeliverArgs{CallbackID: id}, nil); err != nil {
			return fmt.Errorf("insert delivery job for callback %s: %w", id, err)
		}
	}
	return tx.Commit()
}

// deliver makes one delivery attempt of r and records it. It returns nil when r is delivered
// or given up (FAILED), a river.JobSnooze until the next attempt is due, or an error to retry.
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
	final := attempts >= len(s.cfg.Schedule)
	newStatus := StatusPending
	if final {
		newStatus = StatusFailed
	}
	if _, err := s.work.ExecContext(ctx, `UPDATE callbacks SET status = $2, attempts = $3, last_status_code = $4, last_error = $5
		WHERE id = $1 AND status = 'PENDING'`, r.ID, newStatus, attempts, code, derr.Error()); err != nil {
		return fmt.Errorf("record failed delivery of callback %s: %w", r.ID, err)
	}
	if final {
		s.deliveries.WithLabelValues("failed").Inc()
		s.log.Warn("callback FAILED after its last attempt", "callbackId", r.ID, "requestId", r.RequestID, "attempts", attempts, "err", derr.Error())
		return nil
	}
	s.deliveries.WithLabelValues("retry").Inc()
	wait := max(retry.Jitter(s.cfg.Schedule[attempts], 0.1), retryAfter)
	s.log.Info("callback delivery failed; will retry", "callbackId", r.ID, "attempt", attempts, "retryIn", wait.String(), "err", derr.Error())
	return river.JobSnooze(max(wait, time.Millisecond))
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
