package exchange

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/outbox"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/verification"
)

// Message kinds: what a message to a counterparty carries.
const (
	KindVerification = "VERIFICATION"
	KindResult       = "RESULT"
	KindTxReport     = "TX_REPORT"
	KindErrorReport  = "ERROR_REPORT"
)

// paths are where each kind goes on the counterparty's enclave.
var paths = map[string]string{
	KindVerification: "/peer/v1/verifications",
	KindResult:       "/peer/v1/verifications/result",
	KindTxReport:     "/peer/v1/verifications/tx",
	KindErrorReport:  "/peer/v1/verifications/error",
}

// Message statuses (internal/outbox's).
const (
	StatusPending   = outbox.Pending
	StatusDelivered = outbox.Delivered
	StatusFailed    = outbox.Failed
)

// enqueue records a message to the counterparty peer about verification id, and its send job,
// in tx. It is numbered after the messages before it (the verification's row is locked by
// tx), which it is sent after.
func (s *Service) enqueue(ctx context.Context, tx *sqlx.Tx, verificationUUID, peer, kind string) error {
	id := uuid.NewString()
	if _, err := tx.ExecContext(ctx, `INSERT INTO peer_messages (id, verification_uuid, peer_vasp_id, kind, seq, status)
		SELECT $1, $2, $3, $4, coalesce(max(seq), 0) + 1, 'PENDING' FROM peer_messages WHERE verification_uuid = $2`,
		id, verificationUUID, peer, kind); err != nil {
		return fmt.Errorf("insert %s message about %s: %w", kind, verificationUUID, err)
	}
	if _, err := s.client.InsertTx(ctx, tx.Tx, SendArgs{MessageID: id}, nil); err != nil {
		return fmt.Errorf("insert send job of message %s: %w", id, err)
	}
	return nil
}

// Record is a message to a counterparty as the API shows it. It holds no personal data: the
// body is rendered from the verification when sent.
type Record struct {
	ID               string `json:"id" db:"id"`
	VerificationUUID string `json:"verificationUuid" db:"verification_uuid"`
	PeerVaspID       string `json:"counterpartyVaspId" db:"peer_vasp_id"`
	Kind             string `json:"kind" db:"kind"`
	Seq              int    `json:"-" db:"seq"`
	outbox.Delivery
}

func (r *Record) fill() { r.Fill() }

const recordColumns = `id, verification_uuid, peer_vasp_id, kind, seq, ` + outbox.Columns

// Filter selects messages for ListMessages.
type Filter struct {
	Status, Kind, VerificationUUID string
	Page                           sqlpage.Request
}

// messageList is GET /v1/peer-messages: newest first, each filter served by an index
// (db/schema/00008_list_indexes.sql).
var messageList = sqlpage.List{Name: "peer-messages", From: "peer_messages", Columns: recordColumns, Time: "created_at", ID: "id", UUIDKey: true}

// ListMessages returns one page of messages to counterparties, newest first, and how many
// match in all.
func (s *Service) ListMessages(ctx context.Context, f Filter) ([]Record, sqlpage.Page, error) {
	var none sqlpage.Page
	var w sqlpage.Where
	if f.Status != "" {
		if err := apperr.OneOf("status", f.Status, StatusPending, StatusDelivered, StatusFailed); err != nil {
			return nil, none, err
		}
		w.Add("status = $%d", strings.ToUpper(f.Status))
	}
	if f.Kind != "" {
		if err := apperr.OneOf("kind", f.Kind, KindVerification, KindResult, KindTxReport, KindErrorReport); err != nil {
			return nil, none, err
		}
		w.Add("kind = $%d", strings.ToUpper(f.Kind))
	}
	if f.VerificationUUID != "" {
		id, err := ids.UUID("verificationUuid", f.VerificationUUID)
		if err != nil {
			return nil, none, err
		}
		w.Add("verification_uuid = $%d", id)
	}
	out, p, err := sqlpage.Select(ctx, s.api, messageList, w, f.Page, func(r Record) sqlpage.Key { return sqlpage.Key{Time: r.Created, ID: r.ID} })
	if err != nil {
		return nil, p, err
	}
	for i := range out {
		out[i].fill()
	}
	return out, p, nil
}

// Redeliver starts a FAILED message's retries again. Any other status is BAD-REQUEST, and so
// is a verification message whose verification has a result already (ours ended it: sending
// it now could not change that); an unknown id is NOT-FOUND.
func (s *Service) Redeliver(ctx context.Context, id string) (Record, error) {
	var r Record
	now := time.Now().UTC()
	t := outbox.Table{Name: "peer_messages", Noun: "PeerMessage", Columns: recordColumns,
		Job: func(id string) river.JobArgs { return SendArgs{MessageID: id, Redelivered: now} }}
	_, err := outbox.Redeliver(ctx, s.api, s.client, t, id, &r,
		func(ctx context.Context) error {
			if r.Kind != KindVerification {
				return nil
			}
			v, err := s.verifs.FindWithoutPayload(ctx, r.VerificationUUID)
			if err != nil {
				return err
			}
			if v.Outcome.Result.Terminal() {
				return apperr.Bad("id: verification %s is %s already; its verification message cannot change that", v.UUID, v.Outcome.Result)
			}
			return nil
		})
	r.fill()
	return r, err
}

// SendArgs is the job that sends one message to a counterparty enclave.
type SendArgs struct {
	MessageID string `json:"messageId"`
	// Redelivered is when an operator asked for a FAILED message to be sent again: its retries
	// run from then.
	Redelivered time.Time `json:"redelivered,omitzero"`
}

// Kind is stable across deploys: never rename it.
func (SendArgs) Kind() string { return "peer_send" }

// InsertOpts puts messages on the exchange's lane; failures of the database itself are retried
// by River, HTTP failures are snoozed by the worker.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 100}
}

// SendWorker works SendArgs.
type SendWorker struct {
	river.WorkerDefaults[SendArgs]
	S *Service
}

// Timeout bounds one attempt, database work included.
func (w *SendWorker) Timeout(*river.Job[SendArgs]) time.Duration { return w.S.JobTimeout() }

// NextRetry retries failures of the enclave itself quickly.
func (w *SendWorker) NextRetry(j *river.Job[SendArgs]) time.Time {
	return time.Now().Add(retry.Backoff{Base: 2 * time.Second, Cap: time.Minute}.Delay(j.Attempt - 1))
}

// Work makes one attempt to send the message, once those before it about the same
// verification are delivered or given up.
func (w *SendWorker) Work(ctx context.Context, j *river.Job[SendArgs]) error {
	s := w.S
	var m Record
	err := s.work.GetContext(ctx, &m, `SELECT `+recordColumns+` FROM peer_messages WHERE id = $1`, j.Args.MessageID)
	if errors.Is(err, sql.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("message %s does not exist", j.Args.MessageID))
	}
	if err != nil {
		return fmt.Errorf("load message %s: %w", j.Args.MessageID, err)
	}
	if m.Status != StatusPending {
		return nil // sent (or given up) by an earlier run
	}
	var waiting bool
	if err := s.work.GetContext(ctx, &waiting, `SELECT EXISTS (SELECT 1 FROM peer_messages
		WHERE verification_uuid = $1 AND seq < $2 AND status = 'PENDING')`, m.VerificationUUID, m.Seq); err != nil {
		return fmt.Errorf("look for messages before %s: %w", m.ID, err)
	}
	if waiting {
		// In order: the counterparty must have the verification before its result or reports.
		return river.JobSnooze(s.cfg.Retry.Delay(min(m.Attempts+assessment.Snoozes(j.Metadata), 6)))
	}
	return s.send(ctx, m, j.Args.Redelivered)
}

// send makes one attempt and records it: delivered; retried later (a snooze); or FAILED, for
// good (a 4xx other than 429, a redirect) or after its time ran out.
func (s *Service) send(ctx context.Context, m Record, redelivered time.Time) error {
	v, err := s.verifs.Find(ctx, m.VerificationUUID)
	if err != nil {
		if e, ok := apperr.As(err); ok && e.Code == apperr.NotFoundVerification {
			return river.JobCancel(fmt.Errorf("message %s: its verification is gone (retention)", m.ID))
		}
		return err
	}
	t, isTRP, err := findTransfer(ctx, s.work, v.UUID)
	if err != nil {
		return err
	}
	var a signedhttp.Answer
	var perr error // the message cannot be sent at all
	if isTRP {
		a, err, perr = s.postTRP(ctx, m, v, t)
	} else {
		body, rerr := render(m.Kind, v)
		if rerr != nil {
			return river.JobCancel(fmt.Errorf("message %s: %w", m.ID, rerr))
		}
		var p Peer
		if p, perr = s.peer("peer", m.PeerVaspID); perr == nil {
			a, err = s.peers.Post(ctx, signedhttp.Request{URL: strings.TrimRight(p.URL, "/") + paths[m.Kind], Secret: p.Secret, ID: "msg_" + m.ID,
				Header: map[string][]string{"X-Vasp-Id": {s.cfg.VaspID}}, Body: body})
		} else {
			err = errors.New("the counterparty is no longer in ENCLAVE_PEERS_FILE with a url")
		}
	}
	attempts := m.Attempts + 1
	if err == nil {
		s.hook(ctx, "sent", m.ID)
		// The sighting first: whoever reads the message DELIVERED finds the counterparty seen.
		if err := seen(ctx, s.work, m.PeerVaspID); err != nil {
			s.log.WarnContext(ctx, "exchange: record a sighting", "counterparty", m.PeerVaspID, "err", err) // recorded all the same
		}
		if isTRP && m.Kind == KindVerification {
			return s.inquiryAnswered(ctx, m, v, attempts, a)
		}
		if err := delivered(ctx, s.work, m.ID, attempts, a.Status); err != nil {
			return err
		}
		s.sent.WithLabelValues(m.Kind, "delivered").Inc()
		return nil
	}
	problem := describe(err, a)
	start := m.Created
	if !redelivered.IsZero() {
		start = redelivered
	}
	giveUp := start.Add(s.cfg.ReportMaxAge)
	if m.Kind == KindVerification || m.Kind == KindResult {
		// Past the originator's wait, a verification or a result changes nothing.
		giveUp = v.CreatedAt.Add(s.cfg.Timeout)
		if v.DeadlineAt != nil {
			giveUp = *v.DeadlineAt
		}
		giveUp = later(giveUp, redelivered.Add(s.cfg.Timeout))
	}
	wait := max(s.cfg.Retry.Delay(m.Attempts), a.RetryAfter)
	permanent := perr != nil || (a.Status != 0 && !a.Transient())
	if permanent || time.Now().Add(wait).After(giveUp) {
		return s.fail(ctx, m, v, attempts, a, problem, permanent)
	}
	if _, err := s.work.ExecContext(ctx, `UPDATE peer_messages SET attempts = $2, last_status_code = $3, last_error = $4,
		next_attempt_at = now() + $5 * interval '1 millisecond' WHERE id = $1 AND status = 'PENDING'`,
		m.ID, attempts, statusOrNil(a.Status), problem, wait.Milliseconds()); err != nil {
		return fmt.Errorf("record failed attempt of message %s: %w", m.ID, err)
	}
	s.sent.WithLabelValues(m.Kind, "retry").Inc()
	s.log.Info("message to counterparty failed; will retry", "messageId", m.ID, "kind", m.Kind, "counterparty", m.PeerVaspID,
		"verificationUuid", m.VerificationUUID, "attempt", attempts, "retryIn", wait.Round(time.Millisecond).String(), "err", problem)
	return river.JobSnooze(max(wait, time.Millisecond))
}

// fail gives a message up: FAILED, and on the originator's side a verification the
// counterparty refused, or could not be told in time, ends in ERROR with one VERIFICATION_RESULT.
func (s *Service) fail(ctx context.Context, m Record, v verification.Verification, attempts int, a signedhttp.Answer, problem string, refused bool) error {
	_, err := s.verifs.Change(ctx, m.VerificationUUID, func(tx *sqlx.Tx, v verification.Verification) error {
		res, err := tx.ExecContext(ctx, `UPDATE peer_messages SET status = 'FAILED', attempts = $2, last_status_code = $3, last_error = $4,
			next_attempt_at = NULL WHERE id = $1 AND status = 'PENDING'`, m.ID, attempts, statusOrNil(a.Status), problem)
		if err != nil {
			return fmt.Errorf("record failed message %s: %w", m.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 || m.Kind != KindVerification || !refused {
			return nil
		}
		next, changed, _ := verification.Transition(v.Outcome, verification.Answered, verification.Outcome{
			Result: verification.Error, Reason: verification.ReasonUndefinedError, Message: "the beneficiary VASP refused the verification: " + problem})
		if !changed {
			return nil
		}
		_, err = s.settle(ctx, tx, v, next)
		return err
	})
	if err != nil {
		return err
	}
	s.sent.WithLabelValues(m.Kind, "failed").Inc()
	s.log.Warn("message to counterparty FAILED", "messageId", m.ID, "kind", m.Kind, "counterparty", m.PeerVaspID,
		"verificationUuid", m.VerificationUUID, "attempts", attempts, "err", problem)
	return nil
}

// describe says what went wrong with an attempt, with the counterparty's own code and message
// when it answered with the enclave's error shape.
func describe(err error, a signedhttp.Answer) string {
	var e struct{ Code, Message string }
	if a.Status >= 400 && json.Unmarshal(a.Body, &e) == nil && e.Code != "" {
		msg := e.Code + ": " + e.Message
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return fmt.Sprintf("answered %d %s", a.Status, msg)
	}
	return err.Error()
}

// render builds the body of a message of kind about v (read with its payload).
func render(kind string, v verification.Verification) ([]byte, error) {
	switch kind {
	case KindVerification:
		return v.Message()
	case KindResult:
		m := map[string]any{"verificationUuid": v.UUID, "result": v.Outcome.Result, "reason": v.Outcome.Reason,
			"message": v.Outcome.Message}
		if len(v.Outcome.Beneficiary) > 0 {
			m["ivms101"] = map[string]json.RawMessage{"beneficiary": v.Outcome.Beneficiary}
		}
		return json.Marshal(m)
	case KindTxReport:
		return json.Marshal(verification.TxReport{VerificationUUID: v.UUID, TxHash: v.TxHash, Vout: v.Vout})
	case KindErrorReport:
		if v.ErrorReport == nil {
			return nil, errors.New("the verification has no error report")
		}
		return json.Marshal(ErrorMessage{VerificationUUID: v.UUID, ErrorReport: *v.ErrorReport})
	}
	return nil, fmt.Errorf("unknown message kind %q", kind)
}

func statusOrNil(st int) *int {
	if st == 0 {
		return nil
	}
	return &st
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
