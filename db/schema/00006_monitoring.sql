-- +goose Up
-- Continuous monitoring (KYT guide, Workflow 4): alerts Chainalysis raises after an assessment
-- was processed are pulled in from GET /v1/alerts. Each alert says where it came from, and
-- keeps the analyst's status as KYT shows it.
ALTER TABLE kyt_alerts
    ADD COLUMN source text NOT NULL DEFAULT 'ASSESSMENT' CHECK (source IN ('ASSESSMENT', 'MONITORING')),
    ADD COLUMN alert_status text,
    ADD COLUMN alert_status_created_at timestamptz;
CREATE INDEX kyt_alerts_created_at_idx ON kyt_alerts (created_at DESC, alert_id);

-- The sync matches an alert to our TRANSFER assessment by userId + transferReference: an index
-- lookup, never a scan of the assessments.
CREATE INDEX kyt_results_transfer_idx ON kyt_results (user_id, transfer_ref) WHERE api_type = 'TRANSFER';

-- The sync's one row: the createdAt of the newest alert seen by the last complete sync.
CREATE TABLE kyt_monitor (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    cursor     timestamptz NOT NULL,
    synced_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE kyt_monitor;
DROP INDEX kyt_results_transfer_idx;
DROP INDEX kyt_alerts_created_at_idx;
ALTER TABLE kyt_alerts DROP COLUMN alert_status_created_at, DROP COLUMN alert_status, DROP COLUMN source;
