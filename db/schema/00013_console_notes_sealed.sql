-- +goose Up
-- An analyst's note on an alert is their own words, and may name a person: it is sealed at rest
-- with the data keyset (ENCLAVE_DATA_KEYSET) as the IVMS101 payloads are, bound to its alert, and
-- `enclave rekey` seals it anew under a rotated keyset's primary key. A note written before this
-- migration stays in body until rekey seals it; a row holds its text one way or the other.
ALTER TABLE console_alert_notes ALTER COLUMN body DROP NOT NULL;
ALTER TABLE console_alert_notes DROP CONSTRAINT IF EXISTS console_alert_notes_body_check;
ALTER TABLE console_alert_notes ADD COLUMN body_sealed bytea, ADD COLUMN body_key_id bigint;
ALTER TABLE console_alert_notes ADD CONSTRAINT console_alert_notes_body_once
    CHECK ((body IS NULL) <> (body_sealed IS NULL) AND (body IS NULL OR length(body) BETWEEN 1 AND 4000));

-- +goose Down
-- Rows sealed meanwhile cannot be read back by SQL: they are dropped with the columns, and only
-- notes still in plain text survive.
DELETE FROM console_alert_notes WHERE body IS NULL;
ALTER TABLE console_alert_notes DROP CONSTRAINT console_alert_notes_body_once;
ALTER TABLE console_alert_notes DROP COLUMN body_key_id, DROP COLUMN body_sealed;
ALTER TABLE console_alert_notes ALTER COLUMN body SET NOT NULL;
ALTER TABLE console_alert_notes ADD CONSTRAINT console_alert_notes_body_check CHECK (length(body) BETWEEN 1 AND 4000);
