-- +goose Up
-- A redelivery is recorded on the row it starts again (POST /v1/callbacks/{id}/redeliver, the
-- bulk POST /v1/callbacks/redeliver, the console): how many times, and when last. A DELIVERED
-- callback may be sent again (a receiver that lost it asks), so delivered_at alone no longer
-- tells the whole story. Shared by both outbox tables (internal/outbox).
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS redeliveries integer NOT NULL DEFAULT 0;
ALTER TABLE callbacks ADD COLUMN IF NOT EXISTS redelivered_at timestamptz;
ALTER TABLE peer_messages ADD COLUMN IF NOT EXISTS redeliveries integer NOT NULL DEFAULT 0;
ALTER TABLE peer_messages ADD COLUMN IF NOT EXISTS redelivered_at timestamptz;

-- +goose Down
ALTER TABLE peer_messages DROP COLUMN IF EXISTS redelivered_at;
ALTER TABLE peer_messages DROP COLUMN IF EXISTS redeliveries;
ALTER TABLE callbacks DROP COLUMN IF EXISTS redelivered_at;
ALTER TABLE callbacks DROP COLUMN IF EXISTS redeliveries;
