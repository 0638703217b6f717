-- +goose Up
-- GET /v1/verifications?txHash= compares as the tx report does (network.SameTxHash): a
-- hexadecimal hash in any case, with or without 0x. The filter asks lower(tx_hash) for both
-- spellings, which this index serves; a base58 hash still compares exactly through
-- verifications_tx_hash_idx. Not partial: PostgreSQL keeps no statistics on the expression of a
-- partial index, and without them it guessed hundreds of matches and sorted them.
CREATE INDEX IF NOT EXISTS verifications_tx_hash_lower_idx ON verifications (lower(tx_hash));

-- +goose Down
DROP INDEX IF EXISTS verifications_tx_hash_lower_idx;
