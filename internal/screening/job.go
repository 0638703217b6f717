package screening

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/retry"
)

// Args is the one job of a screening, inserted with it: it registers the address, reads its
// risk and ends the screening, snoozing between tries.
type Args struct {
	RequestID  string    `json:"requestId"`
	Address    string    `json:"address"`
	AcceptedAt time.Time `json:"acceptedAt"`
}

// Kind is stable across deploys: never rename it.
func (Args) Kind() string { return "address_screening" }

// InsertOpts: see assessment.InsertOpts.
func (Args) InsertOpts() river.InsertOpts { return assessment.InsertOpts() }

// Worker works Args.
type Worker struct {
	river.WorkerDefaults[Args]
	S *Service
}

// Timeout bounds one run: see Service.RunTimeout.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return w.S.RunTimeout() }

// NextRetry after a failure of the enclave itself.
func (w *Worker) NextRetry(j *river.Job[Args]) time.Time { return assessment.NextRetry(j.Attempt) }

// product names Chainalysis's API in stored error messages.
const product = "Chainalysis Address Screening"

// Work takes the screening one step further: register the address unless Chainalysis has it,
// read its risk, and end the screening, or snooze until the next try.
func (w *Worker) Work(ctx context.Context, j *river.Job[Args]) error {
	s, a := w.S, j.Args
	status := assessment.StatusPending
	if j.Attempt > 1 || assessment.Snoozes(j.Metadata) > 0 {
		// Not the first run: an earlier one may have got further.
		if err := s.work.GetContext(ctx, &status, `SELECT status FROM screening_results WHERE request_id = $1`, a.RequestID); err != nil {
			return fmt.Errorf("load screening %s: %w", a.RequestID, err)
		}
	}
	if assessment.Terminal(status) {
		return nil // ended by a run cut short before River recorded it: its callback is on its way
	}
	deadline := a.AcceptedAt.Add(s.cfg.MaxAge)
	if time.Now().After(deadline) {
		return s.endWithError(ctx, a, "ADDRESS-SCREENING-TIMEOUT",
			fmt.Sprintf("%s did not answer the address's risk within %s", product, s.cfg.MaxAge))
	}
	if s.risk == nil {
		return s.endWithError(ctx, a, "ADDRESS-SCREENING-NOT-CONFIGURED", "CHAINALYSIS_RISK_API_KEY is no longer set")
	}
	n := assessment.Snoozes(j.Metadata)
	failed := func(err error) error {
		f := assessment.Failed(err, product, "ADDRESS-SCREENING", s.cfg.Retry.Delay(min(n, 6)), deadline)
		if f.Permanent {
			return s.endWithError(ctx, a, f.Code, f.Message)
		}
		s.log.Info("chainalysis call failed; will retry", "requestId", a.RequestID, "retryIn", f.Wait.String(), "err", err.Error())
		return f.Snooze
	}
	registered := status == assessment.StatusRegistered
	for tries := 0; ; tries++ {
		if !registered {
			s.hook(ctx, "register", a.RequestID)
			if _, err := s.risk.RegisterEntity(ctx, a.Address); err != nil {
				return failed(err)
			}
			registered = true
		}
		if !assessment.RoomForCall(ctx, s.cfg.CallTimeout) {
			return s.leave(ctx, a.RequestID, status, true, river.JobSnooze(time.Millisecond))
		}
		e, err := s.risk.Entity(ctx, a.Address)
		switch {
		case chainalysis.IsEntityNotFound(err) && tries == 0 && assessment.RoomForCall(ctx, s.cfg.CallTimeout):
			// Registered, yet unknown: register again, at once, once.
			s.log.Info("Entity not found after registration; registering the address again", "requestId", a.RequestID)
			registered = false
			continue
		case chainalysis.IsEntityNotFound(err):
			return s.leave(ctx, a.RequestID, status, false, failed(err))
		case err != nil:
			return s.leave(ctx, a.RequestID, status, true, failed(err))
		case !e.Complete():
			d := retry.Jitter(s.cfg.Poll.Delay(n), 0.2)
			return s.leave(ctx, a.RequestID, status, true, river.JobSnooze(max(min(d, time.Until(deadline)), time.Millisecond)))
		}
		s.hook(ctx, "summary", a.RequestID) // the answer read, not yet stored
		return s.afterTerminal(ctx, a.RequestID, s.finishProcessed(ctx, a, e))
	}
}

// leave ends a run short of a terminal state with next (a snooze), first recording whether
// Chainalysis has the address registered, when that changed, so the next run knows whether to
// register it.
func (s *Service) leave(ctx context.Context, id, status string, registered bool, next error) error {
	if registered != (status == assessment.StatusRegistered) {
		if err := s.markRegistered(ctx, id, registered); err != nil {
			return err
		}
		s.hook(ctx, "registered", id)
	}
	return next
}

func (s *Service) endWithError(ctx context.Context, a Args, code, msg string) error {
	err := s.finishError(ctx, a, code, msg)
	if err == nil {
		s.log.Warn("address screening ended in ERROR", "requestId", a.RequestID, "code", code, "message", msg)
	}
	return s.afterTerminal(ctx, a.RequestID, err)
}

// afterTerminal follows a terminal transition (err its result). The transition enqueued the
// callback, which the delivery lane is woken for; when an earlier run made it, that run's
// callback is on its way already.
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

func (s *Service) hook(ctx context.Context, step, requestID string) {
	if s.cfg.Hook != nil {
		s.cfg.Hook(ctx, step, requestID)
	}
}
