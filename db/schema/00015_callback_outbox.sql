-- +goose Up
-- The callbacks row is its own delivery work (internal/outbox.Lane): a PENDING callback is
-- due at next_attempt_at, and the lane that claims it moves next_attempt_at past the attempt
-- (a lease), so a process that dies mid-delivery leaves it due again when the lease ends. No
-- River job per callback any more: that job's insert, fetch and completion were a third of
-- the statements an assessment cost (issue 23).
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS next_attempt_at timestamptz;
-- in_flight: claimed for an attempt not yet recorded (while next_attempt_at, its lease, is
-- ahead), for /metrics to tell deliveries running from those waiting for their next attempt.
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS in_flight boolean NOT NULL DEFAULT false;
-- +goose StatementBegin
DO $$
BEGIN
	IF to_regclass('river_job') IS NOT NULL THEN
		-- A callback waiting for its next attempt keeps the time its River job was scheduled for.
		UPDATE callbacks c SET next_attempt_at = (SELECT min(j.scheduled_at) FROM river_job j
			WHERE j.kind = 'callback_deliver' AND j.args->>'callbackId' = c.id::text
			AND j.state IN ('available', 'pending', 'retryable', 'running', 'scheduled'))
		WHERE c.status = 'PENDING';
		DELETE FROM river_job WHERE kind = 'callback_deliver';
	END IF;
END
$$;
-- +goose StatementEnd
UPDATE callbacks SET next_attempt_at = now() WHERE status = 'PENDING' AND next_attempt_at IS NULL;
CREATE INDEX IF NOT EXISTS callbacks_due_idx ON callbacks (next_attempt_at) WHERE status = 'PENDING';

-- +goose Down
DROP INDEX IF EXISTS callbacks_due_idx;
ALTER TABLE callbacks DROP COLUMN IF EXISTS in_flight;
ALTER TABLE callbacks DROP COLUMN IF EXISTS next_attempt_at;
