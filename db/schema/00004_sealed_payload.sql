-- +goose Up
-- The IVMS101 payload is personal data: it is stored sealed (internal/seal: Tink AEAD,
-- AES-256-GCM, the verification's uuid as associated data) in payload_sealed, with the id of
-- the key that sealed it. payload keeps only rows written before this migration until
-- `enclave rekey` seals them.
ALTER TABLE verifications ALTER COLUMN payload DROP NOT NULL;
ALTER TABLE verifications ADD COLUMN payload_sealed bytea;
ALTER TABLE verifications ADD COLUMN payload_key_id bigint;
ALTER TABLE verifications ADD CONSTRAINT verifications_payload_once
    CHECK ((payload IS NULL) <> (payload_sealed IS NULL));

-- +goose Down
UPDATE verifications SET payload = '{}'::jsonb WHERE payload IS NULL; -- sealed payloads cannot go back
ALTER TABLE verifications DROP CONSTRAINT verifications_payload_once;
ALTER TABLE verifications DROP COLUMN payload_key_id;
ALTER TABLE verifications DROP COLUMN payload_sealed;
ALTER TABLE verifications ALTER COLUMN payload SET NOT NULL;
