-- +goose Up
-- Address screening (Chainalysis Entities API): one row per screening (requestId) of the
-- counterparty's wallet address. What Chainalysis answered is kept as it sent it: the scalar
-- fields in columns compliance staff query, the lists (identifications, exposures, triggers)
-- as jsonb, numbers exact.
CREATE TABLE screening_results (
    request_id              uuid PRIMARY KEY,
    verification_uuid       uuid        NOT NULL REFERENCES verifications (uuid),
    counterparty_vasp_id    text        NOT NULL,
    address                 text        NOT NULL,
    status                  text        NOT NULL CHECK (status IN ('PENDING', 'REGISTERED', 'PROCESSED', 'ERROR')),
    risk                    text,
    risk_reason             text,
    cluster_name            text,
    cluster_category        text,
    address_type            text,
    address_identifications jsonb,
    exposures               jsonb,
    triggers                jsonb,
    pool_metadata           jsonb,
    error_code              text,
    error_message           text,
    request_sha256          bytea,
    notify                  boolean     NOT NULL DEFAULT false,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    assessed_at             timestamptz
) WITH (fillfactor = 80);
CREATE INDEX screening_results_created_at_idx ON screening_results (created_at DESC, request_id);
CREATE INDEX screening_results_verification_idx ON screening_results (verification_uuid, created_at DESC);

-- Prefer: wait on either POST route: the assessment's terminal transition notifies the
-- waiting request (pg_notify), whichever replica makes it. Only asked-for assessments notify.
ALTER TABLE kyt_results ADD COLUMN notify boolean NOT NULL DEFAULT false;

-- +goose Down
ALTER TABLE kyt_results DROP COLUMN notify;
DROP TABLE screening_results;
