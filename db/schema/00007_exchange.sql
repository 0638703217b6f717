-- +goose Up
-- The verification exchange (DESIGN.md §12). A verification carries the beneficiary VASP's
-- answer (result, reason, message, result_at) and the beneficiary IVMS101 that VASP returned,
-- sealed like the payload (result_sealed, with the id of the key that sealed it); and the last
-- error report either side sent (error_*). required_beneficiary_info is the originator's
-- list of codes (no personal data). deadline_at is when an originator stops waiting.
ALTER TABLE verifications
    ADD COLUMN result                    text NOT NULL DEFAULT 'PENDING'
        CHECK (result IN ('PENDING', 'VERIFIED', 'DENIED', 'UNKNOWN', 'ERROR')),
    ADD COLUMN reason                    text,
    ADD COLUMN message                   text,
    ADD COLUMN result_at                 timestamptz,
    ADD COLUMN result_sealed             bytea,
    ADD COLUMN result_key_id             bigint,
    ADD COLUMN required_beneficiary_info text,
    ADD COLUMN deadline_at               timestamptz,
    ADD COLUMN error_result              text,
    ADD COLUMN error_reason              text,
    ADD COLUMN error_message             text,
    ADD COLUMN error_at                  timestamptz,
    ADD COLUMN error_from                text CHECK (error_from IN ('SELF', 'COUNTERPARTY'));

CREATE INDEX verifications_result_idx ON verifications (result, created_at DESC, uuid);

-- Every message sent to a counterparty enclave. The body is not kept: it is rendered from the
-- verification when sent, so no personal data lands here. seq orders the messages about one
-- verification: one is sent only once those before it are delivered or given up.
CREATE TABLE peer_messages (
    id                uuid PRIMARY KEY,
    verification_uuid uuid        NOT NULL,
    peer_vasp_id      text        NOT NULL,
    kind              text        NOT NULL CHECK (kind IN ('VERIFICATION', 'RESULT', 'TX_REPORT', 'ERROR_REPORT')),
    seq               integer     NOT NULL,
    status            text        NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts          integer     NOT NULL DEFAULT 0,
    last_status_code  integer,
    last_error        text,
    next_attempt_at   timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    delivered_at      timestamptz,
    UNIQUE (verification_uuid, seq)
);
CREATE INDEX peer_messages_created_at_idx ON peer_messages (created_at DESC, id);
CREATE INDEX peer_messages_status_idx ON peer_messages (status, created_at DESC, id);

-- Callbacks about a verification (VERIFICATION_RESULT, TX_REPORT, ERROR_REPORT,
-- VERIFICATION_REQUEST) name it; a VERIFICATION_RESULT's beneficiary IVMS101 is not frozen
-- into its payload but added from the sealed verification when it is delivered.
ALTER TABLE callbacks ADD COLUMN verification_uuid uuid;
ALTER TABLE callbacks ADD COLUMN attach_result boolean NOT NULL DEFAULT false;
CREATE INDEX callbacks_verification_idx ON callbacks (verification_uuid) WHERE verification_uuid IS NOT NULL;
-- Exactly one VERIFICATION_RESULT per verification, whatever the number of replicas.
CREATE UNIQUE INDEX callbacks_one_result_idx ON callbacks (verification_uuid) WHERE callback_type = 'VERIFICATION_RESULT';

-- +goose Down
DROP INDEX callbacks_one_result_idx;
DROP INDEX callbacks_verification_idx;
ALTER TABLE callbacks DROP COLUMN attach_result;
ALTER TABLE callbacks DROP COLUMN verification_uuid;
DROP TABLE peer_messages;
DROP INDEX verifications_result_idx;
ALTER TABLE verifications
    DROP COLUMN result, DROP COLUMN reason, DROP COLUMN message, DROP COLUMN result_at,
    DROP COLUMN result_sealed, DROP COLUMN result_key_id, DROP COLUMN required_beneficiary_info,
    DROP COLUMN deadline_at, DROP COLUMN error_result, DROP COLUMN error_reason,
    DROP COLUMN error_message, DROP COLUMN error_at, DROP COLUMN error_from;
