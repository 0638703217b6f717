package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/vaspapi"
	"github.com/travelrule/enclave/internal/verification"
)

// TimeoutArgs ends an originator's wait for a result: inserted with the verification, due at
// its deadline.
type TimeoutArgs struct {
	VerificationUUID string `json:"verificationUuid"`
}

// Kind is stable across deploys: never rename it.
func (TimeoutArgs) Kind() string { return "verification_timeout" }

// TimeoutWorker works TimeoutArgs.
type TimeoutWorker struct {
	river.WorkerDefaults[TimeoutArgs]
	S *Service
}

// Work ends a verification still PENDING in ERROR / REQUEST-TIMEOUT, with its one
// VERIFICATION_RESULT and an error report that tells the counterparty to stop waiting too.
func (w *TimeoutWorker) Work(ctx context.Context, j *river.Job[TimeoutArgs]) error {
	s := w.S
	_, err := s.verifs.Change(ctx, j.Args.VerificationUUID, func(tx *sqlx.Tx, v verification.Verification) error {
		if v.DeadlineAt != nil && time.Now().Before(*v.DeadlineAt) {
			return river.JobSnooze(time.Until(*v.DeadlineAt))
		}
		next, changed, _ := verification.Transition(v.Outcome, verification.TimedOut, verification.Outcome{})
		if !changed {
			return nil
		}
		v, err := s.settle(ctx, tx, v, next)
		if err != nil || v.ErrorReport != nil {
			return err
		}
		return s.reportError(ctx, tx, v, verification.ErrorReport{Result: string(verification.Error), Reason: next.Reason,
			Message: next.Message, From: verification.FromSelf})
	})
	if e, ok := apperr.As(err); ok && e.Code == apperr.NotFoundVerification {
		return nil // deleted by retention
	}
	return err
}

// VerifyUserArgs asks this VASP's Verify User API about an inbound verification.
type VerifyUserArgs struct {
	VerificationUUID string `json:"verificationUuid"`
}

// Kind is stable across deploys: never rename it.
func (VerifyUserArgs) Kind() string { return "verify_user" }

// InsertOpts puts the question on the exchange's lane.
func (VerifyUserArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 100}
}

// VerifyUserWorker works VerifyUserArgs.
type VerifyUserWorker struct {
	river.WorkerDefaults[VerifyUserArgs]
	S *Service
}

// Timeout bounds one call and the transaction after it.
func (w *VerifyUserWorker) Timeout(*river.Job[VerifyUserArgs]) time.Duration { return w.S.JobTimeout() }

// Work asks the VASP and records its answer with the result message to the originator. A
// failed call — no answer, 429, 5xx, an answer that is not one the exchange knows — is tried
// again (from about 1 s, doubling, capped at 1 min, Retry-After honoured) until the originator
// would have stopped waiting; then the VASP can still answer through the result route.
func (w *VerifyUserWorker) Work(ctx context.Context, j *river.Job[VerifyUserArgs]) error {
	s := w.S
	v, err := s.verifs.Find(ctx, j.Args.VerificationUUID)
	if e, ok := apperr.As(err); ok && e.Code == apperr.NotFoundVerification {
		return nil // deleted by retention
	}
	if err != nil {
		return err
	}
	if v.Outcome.Result.Terminal() {
		return nil // answered, or ended by an error report
	}
	o, err := s.vasp.VerifyUser(ctx, v)
	var f *vaspapi.Failure
	if errors.As(err, &f) {
		giveUp := v.CreatedAt.Add(s.cfg.Timeout)
		wait := max(s.cfg.Retry.Delay(assessment.Snoozes(j.Metadata)), f.RetryAfter)
		if time.Now().Add(wait).After(giveUp) {
			s.log.Warn("Verify User API: giving up; the VASP can still answer with POST /v1/verifications/{verificationUuid}/result",
				"verificationUuid", v.UUID, "status", f.Status, "err", f.Reason)
			return nil
		}
		s.log.Warn("Verify User API failed; will retry", "verificationUuid", v.UUID, "status", f.Status, "err", f.Reason,
			"retryIn", wait.Round(time.Millisecond).String())
		return river.JobSnooze(wait)
	}
	if err != nil {
		return fmt.Errorf("verify user %s: %w", v.UUID, err)
	}
	s.hook(ctx, "asked", v.UUID)
	_, err = s.verifs.Change(ctx, v.UUID, func(tx *sqlx.Tx, v verification.Verification) error {
		if err := s.answer(ctx, tx, v, o); err != nil {
			if e, ok := apperr.As(err); ok && e.Code == apperr.Conflict {
				return nil // answered through the result route meanwhile
			}
			return err
		}
		return nil
	})
	return err
}
