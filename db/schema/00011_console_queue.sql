-- +goose Up
-- The console's alerts queue (DESIGN.md §14) reads open alerts most severe first, then oldest
-- first (internal/sqlpage's ranked lists): this index serves that order as one range scan, its
-- expression written exactly as kytjob's severity rank.
CREATE INDEX IF NOT EXISTS kyt_alerts_severity_idx ON kyt_alerts
    ((CASE alert_level WHEN 'SEVERE' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 3 ELSE 4 END), created_at, alert_id);

-- A counterparty is also seen when a message is delivered to it or received from it (DESIGN.md
-- §13, "or its last exchange"): such a sighting may come before any probe, so checked_at, when
-- it was last probed, may be unknown; a counterparty never probed is DOWN.
ALTER TABLE counterparty_health ALTER COLUMN checked_at DROP NOT NULL;

-- +goose Down
UPDATE counterparty_health SET checked_at = '-infinity' WHERE checked_at IS NULL;
ALTER TABLE counterparty_health ALTER COLUMN checked_at SET NOT NULL;
DROP INDEX IF EXISTS kyt_alerts_severity_idx;
