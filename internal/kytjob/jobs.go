package kytjob

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/webhook"
)

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

// AssessArgs is the one job of an assessment. It is inserted with the assessment and carries
// it through every state: PENDING, it registers with Chainalysis; REGISTERED, it polls until
// Chainalysis has processed it and stores the result; terminal, it delivers the terminal
// callback until the receiver acknowledges it or its schedule ends. Between steps it snoozes
// rather than inserting follow-up jobs, so an assessment costs one job.
type AssessArgs struct {
	RequestID string `json:"requestId"`
	Target    Target `json:"target"`
}

// Kind is stable across deploys: never rename it.
func (AssessArgs) Kind() string { return "kyt_assess" }

// InsertOpts: see assessment.InsertOpts.
func (AssessArgs) InsertOpts() river.InsertOpts { return assessment.InsertOpts() }

// AssessWorker works AssessArgs.
type AssessWorker struct {
	river.WorkerDefaults[AssessArgs]
	S *Service
}

// Timeout bounds one run: see Service.RunTimeout.
func (w *AssessWorker) Timeout(*river.Job[AssessArgs]) time.Duration { return w.S.RunTimeout() }

// NextRetry after a failure of the enclave itself.
func (w *AssessWorker) NextRetry(j *river.Job[AssessArgs]) time.Time {
	return assessment.NextRetry(j.Attempt)
}

// Work takes the assessment one step further.
func (w *AssessWorker) Work(ctx context.Context, j *river.Job[AssessArgs]) error {
	s, id := w.S, j.Args.RequestID
	if s.kyt == nil {
		return s.endWithError(ctx, id, "KYT-NOT-CONFIGURED", "CHAINALYSIS_KYT_API_KEY is no longer set")
	}
	if j.Attempt == 1 && assessment.Snoozes(j.Metadata) == 0 {
		// The job's first run: nothing but this job moves the assessment on, so it is still
		// PENDING as Accept stored it, and the Target has all registration needs.
		return s.register(ctx, j)
	}
	var st struct {
		Status     string         `db:"status"`
		ExternalID sql.NullString `db:"external_id"`
		UpdatedAt  time.Time      `db:"updated_at"`
	}
	if err := s.work.GetContext(ctx, &st, `SELECT status, external_id, updated_at FROM kyt_results WHERE request_id = $1`, id); err != nil {
		return fmt.Errorf("load assessment %s: %w", id, err)
	}
	switch st.Status {
	case webhook.StatusPending:
		return s.register(ctx, j)
	case webhook.StatusRegistered:
		return s.poll(ctx, j, st.ExternalID.String, st.UpdatedAt, true)
	default:
		// A run that ended it was cut short before River recorded the job's end (a crash): its
		// callback, enqueued in the same transaction, is on its way.
		return nil
	}
}

// register registers the assessment. A withdrawal attempt that Chainalysis answers as
// processed has its alerts read and stored at once; anything else goes on to polling.
func (s *Service) register(ctx context.Context, j *river.Job[AssessArgs]) error {
	id, t := j.Args.RequestID, j.Args.Target
	if stop, err := s.checkAge(ctx, id, t.AcceptedAt, "register"); stop {
		return err
	}
	s.hook(ctx, "register", id)
	n, ok := s.reg.Network(t.Network)
	if !ok {
		return s.endWithError(ctx, id, "KYT-UNSUPPORTED-NETWORK", fmt.Sprintf("network %s is no longer supported", t.Network))
	}
	wait := s.cfg.Register.Delay(assessment.Snoozes(j.Metadata))
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
			return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, wait)
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
			return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, wait)
		}
		externalID = tr.ExternalID
	}

	if processed != nil && s.roomForCall(ctx) {
		// The answer is already there: read the alerts now and finish in one go.
		alerts, err := s.kyt.AttemptAlerts(ctx, externalID)
		if err == nil {
			return s.finish(ctx, id, outcome{USDAmount: number(processed.USDAmount),
				UpdatedAt: *processed.UpdatedAt, ExternalID: externalID, Alerts: alerts})
		}
		s.log.Info("alerts of a processed withdrawal attempt not read; polling instead", "requestId", id, "err", err.Error())
	}
	// Poll at once, in this run: a transfer Chainalysis has already processed then costs no
	// second run and no REGISTERED write (the terminal transaction records the externalId);
	// one it has not is recorded REGISTERED and snoozes as any poll does. With the REGISTERED
	// callback on, REGISTERED is recorded (and its callback enqueued) at once.
	if s.cfg.CallbackOnRegistered {
		if err := s.recordRegistered(ctx, id, externalID, nil); err != nil {
			return err
		}
	}
	return s.poll(ctx, j, externalID, time.Now(), s.cfg.CallbackOnRegistered)
}

// recordRegistered records REGISTERED and then goes on with next (nil: the run goes on). When
// an earlier run got further, the job snoozes briefly instead: the next run reads how far.
func (s *Service) recordRegistered(ctx context.Context, id, externalID string, next error) error {
	switch err := s.markRegistered(ctx, id, externalID); {
	case errors.Is(err, assessment.ErrNotOpen):
		return river.JobSnooze(time.Millisecond)
	case err != nil:
		return err
	}
	s.hook(ctx, "registered", id)
	return next
}

// roomForCall reports whether the run has time left for one more Chainalysis call and the
// transaction after it. A run that has not snoozes and goes on in the next run.
func (s *Service) roomForCall(ctx context.Context) bool {
	return assessment.RoomForCall(ctx, s.cfg.CallTimeout)
}

// markRegistered records the externalId Chainalysis issued, with the REGISTERED callback when
// that option is on. It returns assessment.ErrNotOpen when an earlier run got further.
func (s *Service) markRegistered(ctx context.Context, id, externalID string) error {
	const mark = `UPDATE kyt_results SET status = 'REGISTERED', external_id = $2, updated_at = now()
		WHERE request_id = $1 AND status = 'PENDING'`
	var err error
	if s.cfg.CallbackOnRegistered {
		err = s.inTx(ctx, func(tx *sqlx.Tx) error {
			var reg row
			if err := tx.GetContext(ctx, &reg, mark+` RETURNING `+resultColumns, id, externalID); err != nil {
				return err
			}
			return s.enqueueCallback(ctx, tx, reg, nil, false)
		})
	} else {
		var res sql.Result
		if res, err = s.work.ExecContext(ctx, mark, id, externalID); err == nil {
			if n, _ := res.RowsAffected(); n == 0 {
				err = sql.ErrNoRows
			}
		}
	}
	if errors.Is(err, sql.ErrNoRows) {
		return assessment.ErrNotOpen
	}
	if err != nil {
		return fmt.Errorf("mark %s registered: %w", id, err)
	}
	return nil
}

// poll reads the summary; while Chainalysis has not processed the assessment the job snoozes,
// for about as long again as it has waited since registration (from Poll.Base up to
// Poll.Cap). Once processed, the alerts are read and everything is stored at once. recorded
// says whether REGISTERED is stored already; if not, it is stored before the run ends short
// of a terminal state, so the next run polls instead of registering again.
func (s *Service) poll(ctx context.Context, j *river.Job[AssessArgs], externalID string, registeredAt time.Time, recorded bool) error {
	id, t := j.Args.RequestID, j.Args.Target
	if stop, err := s.checkAge(ctx, id, t.AcceptedAt, "poll"); stop {
		return err
	}
	// leave ends the run short of a terminal state with next (a snooze).
	leave := func(next error) error {
		if recorded {
			return next
		}
		return s.recordRegistered(ctx, id, externalID, next)
	}
	failed := func(err error) error {
		if !chainalysis.IsTransient(err) {
			return s.chainalysisFailed(ctx, id, t.AcceptedAt, err, 0) // ends in ERROR
		}
		return leave(s.chainalysisFailed(ctx, id, t.AcceptedAt, err, s.cfg.Register.Delay(min(assessment.Snoozes(j.Metadata), 6))))
	}
	notYet := func() error {
		d := retry.Jitter(min(max(time.Since(registeredAt), s.cfg.Poll.Base), s.cfg.Poll.Cap), 0.2)
		if left := time.Until(t.AcceptedAt.Add(s.cfg.MaxAge)); left < d {
			d = max(left, 0) + 10*time.Millisecond
		}
		return leave(river.JobSnooze(d))
	}
	if !s.roomForCall(ctx) {
		return leave(river.JobSnooze(time.Millisecond))
	}
	o := outcome{ExternalID: externalID}
	alerts := s.kyt.TransferAlerts
	if t.APIType == APITypeAttempt {
		a, err := s.kyt.AttemptSummary(ctx, externalID)
		if err != nil {
			return failed(err)
		}
		if !a.Processed() {
			return notYet()
		}
		o.USDAmount, o.UpdatedAt = number(a.USDAmount), *a.UpdatedAt
		alerts = s.kyt.AttemptAlerts
	} else {
		tr, err := s.kyt.TransferSummary(ctx, externalID)
		if err != nil {
			return failed(err)
		}
		if !tr.Processed() {
			return notYet()
		}
		o.USDAmount, o.UpdatedAt = number(tr.USDAmount), *tr.UpdatedAt
		if tr.Timestamp != nil {
			if ts, err := chainalysis.ParseTime(*tr.Timestamp); err == nil {
				o.Timestamp = &ts
			}
		}
	}
	s.hook(ctx, "summary", id)
	if !s.roomForCall(ctx) {
		return leave(river.JobSnooze(time.Millisecond))
	}
	var err error
	if o.Alerts, err = alerts(ctx, externalID); err != nil {
		return failed(err)
	}
	return s.finish(ctx, id, o)
}

// finish stores the processed assessment with its callback and the callback's delivery job.
func (s *Service) finish(ctx context.Context, id string, o outcome) error {
	return s.afterTerminal(ctx, id, s.finishProcessed(ctx, id, o))
}

// afterTerminal follows a terminal transition (err is its result). The transition enqueued the
// callback, for the delivery lane, which is woken for it: the job is done. When an earlier run
// made the transition, that run's callback is on its way already.
func (s *Service) afterTerminal(ctx context.Context, id string, err error) error {
	switch {
	case errors.Is(err, assessment.ErrNotOpen):
	case err != nil:
		return err
	default:
		s.callbacks.Wake()
	}
	s.hook(ctx, "processed", id)
	return nil
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
	f := assessment.Failed(err, "Chainalysis KYT", "KYT", wait, acceptedAt.Add(s.cfg.MaxAge))
	if f.Permanent {
		return s.endWithError(ctx, requestID, f.Code, f.Message)
	}
	s.log.Info("chainalysis call failed; will retry", "requestId", requestID, "retryIn", f.Wait.String(), "err", err.Error())
	return f.Snooze
}

func (s *Service) endWithError(ctx context.Context, requestID, code, msg string) error {
	err := s.finishError(ctx, requestID, code, msg)
	if err == nil {
		s.log.Warn("assessment ended in ERROR", "requestId", requestID, "code", code, "message", msg)
	}
	return s.afterTerminal(ctx, requestID, err)
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
