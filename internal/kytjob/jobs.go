package kytjob

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/jsontime"
)

// jobTimeout bounds one run of a pipeline job: a few Chainalysis calls and a transaction.
const jobTimeout = 45 * time.Second

// Target is what the pipeline's jobs need to call Chainalysis, frozen at accept: a job calls
// Chainalysis without first reading the database, and the transaction that records the answer
// checks the assessment's state.
type Target struct {
	APIType       string     `json:"apiType"`
	UserID        string     `json:"userId"`
	Direction     string     `json:"direction"`
	Network       string     `json:"network"`
	Asset         string     `json:"asset"`
	Amount        string     `json:"amount"`
	TransferRef   string     `json:"transferRef,omitempty"`
	OutputAddress string     `json:"outputAddress"`
	Timestamp     *time.Time `json:"timestamp,omitempty"`
	AcceptedAt    time.Time  `json:"acceptedAt"`
}

// RegisterArgs is the job that registers an assessment with Chainalysis.
type RegisterArgs struct {
	RequestID string `json:"requestId"`
	Target    Target `json:"target"`
}

// Kind is stable across deploys: never rename it.
func (RegisterArgs) Kind() string { return "kyt_register" }

// InsertOpts: Chainalysis failures are snoozed, never counted; attempts only count failures of
// the enclave itself (its database), retried for long enough to outlive an outage.
func (RegisterArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1000} }

// PollArgs is the job that reads a registered assessment's summary until Chainalysis has
// processed it, then stores its alerts.
type PollArgs struct {
	RequestID  string `json:"requestId"`
	ExternalID string `json:"externalId"`
	Target     Target `json:"target"`
}

// Kind is stable across deploys: never rename it.
func (PollArgs) Kind() string { return "kyt_poll" }

// InsertOpts: as RegisterArgs.
func (PollArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1000} }

// retryOnOwnFailure is the retry of a job whose run failed inside the enclave.
func retryOnOwnFailure(attempt int) time.Time {
	return time.Now().Add(Backoff{Base: time.Second, Cap: time.Minute}.Delay(attempt-1, 0))
}

// RegisterWorker works RegisterArgs.
type RegisterWorker struct {
	river.WorkerDefaults[RegisterArgs]
	S *Service
}

// Timeout bounds one run.
func (w *RegisterWorker) Timeout(*river.Job[RegisterArgs]) time.Duration { return jobTimeout }

// NextRetry after a failure of the enclave itself.
func (w *RegisterWorker) NextRetry(j *river.Job[RegisterArgs]) time.Time {
	return retryOnOwnFailure(j.Attempt)
}

// Work registers the assessment. A withdrawal attempt that Chainalysis answers as processed
// has its alerts read and stored at once; anything else goes on to polling.
func (w *RegisterWorker) Work(ctx context.Context, j *river.Job[RegisterArgs]) error {
	s, id, t := w.S, j.Args.RequestID, j.Args.Target
	if stop, err := s.checkAge(ctx, id, t.AcceptedAt, "register"); stop {
		return err
	}
	s.hook(ctx, "register", id)

	n, ok := s.reg.Network(t.Network)
	if !ok {
		return s.endWithError(ctx, id, "KYT-UNSUPPORTED-NETWORK", fmt.Sprintf("network %s is no longer supported", t.Network))
	}
	var externalID string
	var processed *chainalysis.WithdrawalAttempt
	if t.APIType == APITypeAttempt {
		ts := t.AcceptedAt
		if t.Timestamp != nil {
			ts = *t.Timestamp
		}
		a, err := s.kyt.RegisterAttempt(ctx, t.UserID, chainalysis.RegisterAttemptRequest{
			Network: n.Chainalysis, Asset: t.Asset, Address: t.OutputAddress, AttemptIdentifier: id,
			AssetAmount: json.Number(t.Amount), AttemptTimestamp: jsontime.Format(ts),
		})
		if err != nil {
			return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, s.cfg.Register.Delay(snoozes(j.Metadata), 0))
		}
		externalID = a.ExternalID
		if a.Processed() {
			processed = &a
		}
	} else {
		direction := chainalysis.Sent
		if t.Direction == Incoming {
			direction = chainalysis.Received
		}
		amount := json.Number(t.Amount)
		tr, err := s.kyt.RegisterTransfer(ctx, t.UserID, chainalysis.RegisterTransferRequest{
			Network: n.Chainalysis, Asset: t.Asset, TransferReference: t.TransferRef, Direction: direction,
			AssetAmount: &amount,
		})
		if err != nil {
			return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, s.cfg.Register.Delay(snoozes(j.Metadata), 0))
		}
		externalID = tr.ExternalID
	}

	if processed != nil {
		// The answer is already there: read the alerts now and finish in one go.
		alerts, err := s.kyt.AttemptAlerts(ctx, externalID)
		if err == nil {
			err = s.finishProcessed(ctx, id, outcome{USDAmount: number(processed.USDAmount),
				UpdatedAt: *processed.UpdatedAt, ExternalID: externalID, Alerts: alerts})
			if errors.Is(err, errNotOpen) {
				return nil
			}
			if err == nil {
				s.hook(ctx, "processed", id)
			}
			return err
		}
		s.log.Info("alerts of a processed withdrawal attempt not read; polling instead", "requestId", id, "err", err.Error())
	}
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var reg row
		err := tx.GetContext(ctx, &reg, `UPDATE kyt_results SET status = 'REGISTERED', external_id = $2, updated_at = now()
			WHERE request_id = $1 AND status = 'PENDING' RETURNING `+resultColumns, id, externalID)
		if errors.Is(err, sql.ErrNoRows) {
			return errNotOpen // an earlier run got further
		}
		if err != nil {
			return fmt.Errorf("mark %s registered: %w", id, err)
		}
		if _, err := s.client.InsertTx(ctx, tx.Tx, PollArgs{RequestID: id, ExternalID: externalID, Target: t}, nil); err != nil {
			return fmt.Errorf("insert poll job for %s: %w", id, err)
		}
		if s.cfg.CallbackOnRegistered {
			return s.enqueueCallback(ctx, tx, reg, nil, false)
		}
		return nil
	})
	if errors.Is(err, errNotOpen) {
		return nil
	}
	if err == nil {
		s.hook(ctx, "registered", id)
	}
	return err
}

// PollWorker works PollArgs.
type PollWorker struct {
	river.WorkerDefaults[PollArgs]
	S *Service
}

// Timeout bounds one run.
func (w *PollWorker) Timeout(*river.Job[PollArgs]) time.Duration { return jobTimeout }

// NextRetry after a failure of the enclave itself.
func (w *PollWorker) NextRetry(j *river.Job[PollArgs]) time.Time { return retryOnOwnFailure(j.Attempt) }

// Work reads the summary; while Chainalysis has not processed it, the job snoozes with a
// growing interval. Once processed, the alerts are read and everything is stored at once.
func (w *PollWorker) Work(ctx context.Context, j *river.Job[PollArgs]) error {
	s, id, t, externalID := w.S, j.Args.RequestID, j.Args.Target, j.Args.ExternalID
	if stop, err := s.checkAge(ctx, id, t.AcceptedAt, "poll"); stop {
		return err
	}
	n := snoozes(j.Metadata)
	retry := func(err error) error {
		return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, s.cfg.Register.Delay(n, 0))
	}
	o := outcome{ExternalID: externalID}
	var err error
	if t.APIType == APITypeAttempt {
		a, err := s.kyt.AttemptSummary(ctx, externalID)
		if err != nil {
			return retry(err)
		}
		if !a.Processed() {
			return river.JobSnooze(s.pollDelay(t.AcceptedAt, n))
		}
		o.USDAmount, o.UpdatedAt = number(a.USDAmount), *a.UpdatedAt
		s.hook(ctx, "summary", id)
		if o.Alerts, err = s.kyt.AttemptAlerts(ctx, externalID); err != nil {
			return retry(err)
		}
	} else {
		tr, err := s.kyt.TransferSummary(ctx, externalID)
		if err != nil {
			return retry(err)
		}
		if !tr.Processed() {
			return river.JobSnooze(s.pollDelay(t.AcceptedAt, n))
		}
		o.USDAmount, o.UpdatedAt = number(tr.USDAmount), *tr.UpdatedAt
		if tr.Timestamp != nil {
			if ts, err := chainalysis.ParseTime(*tr.Timestamp); err == nil {
				o.Timestamp = &ts
			}
		}
		s.hook(ctx, "summary", id)
		if o.Alerts, err = s.kyt.TransferAlerts(ctx, externalID); err != nil {
			return retry(err)
		}
	}
	err = s.finishProcessed(ctx, id, o)
	if errors.Is(err, errNotOpen) {
		return nil // an earlier run finished it
	}
	if err == nil {
		s.hook(ctx, "processed", id)
	}
	return err
}

// pollDelay is the next poll's wait, never past the assessment's deadline.
func (s *Service) pollDelay(acceptedAt time.Time, n int) time.Duration {
	d := s.cfg.Poll.Delay(n, 0)
	if left := time.Until(acceptedAt.Add(s.cfg.MaxAge)); left < d {
		d = max(left, 0) + 10*time.Millisecond
	}
	return d
}

// checkAge ends an assessment that has run out of time in ERROR KYT-TIMEOUT.
func (s *Service) checkAge(ctx context.Context, requestID string, acceptedAt time.Time, step string) (bool, error) {
	if time.Since(acceptedAt) < s.cfg.MaxAge {
		return false, nil
	}
	msg := fmt.Sprintf("Chainalysis KYT did not process the assessment within %s", s.cfg.MaxAge)
	if step == "register" {
		msg = fmt.Sprintf("Chainalysis KYT did not register the assessment within %s", s.cfg.MaxAge)
	}
	return true, s.endWithError(ctx, requestID, "KYT-TIMEOUT", msg)
}

// chainalysisFailed decides what a failed Chainalysis call means: a permanent refusal ends the
// assessment in ERROR with Chainalysis's reason; a transient one snoozes the job for wait (at
// least Retry-After), never past the deadline.
func (s *Service) chainalysisFailed(ctx context.Context, requestID string, acceptedAt time.Time, err error, wait time.Duration) error {
	var ce *chainalysis.Error
	if errors.As(err, &ce) && !ce.Transient {
		return s.endWithError(ctx, requestID, errorCode(ce.StatusCode),
			fmt.Sprintf("Chainalysis KYT answered %d: %s", ce.StatusCode, ce.Message))
	}
	if ra, ok := chainalysis.RetryAfter(err); ok && ra > wait {
		wait = ra
	}
	if left := time.Until(acceptedAt.Add(s.cfg.MaxAge)); left < wait {
		wait = max(left, 0) + 10*time.Millisecond
	}
	s.log.Info("chainalysis call failed; will retry", "requestId", requestID, "retryIn", wait.String(), "err", err.Error())
	return river.JobSnooze(max(wait, time.Millisecond))
}

func (s *Service) endWithError(ctx context.Context, requestID, code, msg string) error {
	err := s.finishError(ctx, requestID, code, msg)
	if errors.Is(err, errNotOpen) {
		return nil
	}
	if err == nil {
		s.log.Warn("assessment ended in ERROR", "requestId", requestID, "code", code, "message", msg)
		s.hook(ctx, "processed", requestID)
	}
	return err
}

// errorCode names a permanent Chainalysis refusal.
func errorCode(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "KYT-BAD-REQUEST"
	case http.StatusForbidden:
		return "KYT-FORBIDDEN"
	case http.StatusNotFound:
		return "KYT-NOT-FOUND"
	case http.StatusNotAcceptable:
		return "KYT-NOT-ACCEPTABLE"
	case http.StatusConflict:
		return "KYT-CONFLICT"
	default:
		return "KYT-REJECTED"
	}
}

func (s *Service) hook(ctx context.Context, step, requestID string) {
	if s.cfg.Hook != nil {
		s.cfg.Hook(ctx, step, requestID)
	}
}

func number(n *json.Number) *string {
	if n == nil {
		return nil
	}
	v := n.String()
	return &v
}
