-- +goose Up
-- Idempotency-Key on POST /v1/risk-assessment/chainalysis-kyt: the requestId of a keyed request
-- is derived from its key, and this is the hash of the body it was accepted with, so a retry
-- with the same body answers the same requestId and one with another body is refused.
ALTER TABLE kyt_results ADD COLUMN request_sha256 bytea;

-- +goose Down
ALTER TABLE kyt_results DROP COLUMN request_sha256;
