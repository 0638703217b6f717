-- +goose Up
-- The VerifyVASP "Chainalysis KYT Results Table": one row per assessment (requestId).
CREATE TABLE kyt_results (
    request_id           uuid PRIMARY KEY,
    verification_uuid    uuid        NOT NULL REFERENCES verifications (uuid),
    counterparty_vasp_id text        NOT NULL,
    api_type             text        NOT NULL CHECK (api_type IN ('ATTEMPT', 'TRANSFER')),
    user_id              text        NOT NULL,
    direction            text        NOT NULL CHECK (direction IN ('OUTGOING', 'INCOMING')),
    network              text        NOT NULL,
    asset                text        NOT NULL,
    amount               numeric     NOT NULL,
    usd_price            numeric,
    transfer_ref         text,
    output_address       text        NOT NULL,
    "timestamp"          timestamptz,
    external_id          text,
    status               text        NOT NULL CHECK (status IN ('PENDING', 'REGISTERED', 'PROCESSED', 'ERROR')),
    alert_count          integer,
    error_code           text,
    error_message        text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    assessed_at          timestamptz
) WITH (fillfactor = 80); -- room for the status updates to stay HOT (no indexed column changes)
CREATE INDEX kyt_results_created_at_idx ON kyt_results (created_at DESC, request_id);
CREATE INDEX kyt_results_verification_idx ON kyt_results (verification_uuid, created_at DESC);

-- The VerifyVASP "Chainalysis KYT Alerts Table": alert ids are Chainalysis's, so storing the
-- same alert twice is a no-op.
CREATE TABLE kyt_alerts (
    alert_id        text PRIMARY KEY,
    request_id      uuid        NOT NULL REFERENCES kyt_results (request_id),
    external_id     text        NOT NULL,
    alert_level     text        NOT NULL,
    entity_category text,
    service_name    text,
    exposure_type   text        NOT NULL,
    alert_amount    numeric     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX kyt_alerts_request_idx ON kyt_alerts (request_id);

-- Callbacks to the VASP's backend. The payload is json, not jsonb, so the bytes signed and
-- sent are exactly those frozen when the callback was enqueued, key order included.
CREATE TABLE callbacks (
    id               uuid PRIMARY KEY,
    request_id       uuid,
    callback_type    text        NOT NULL,
    terminal         boolean     NOT NULL,
    payload          json        NOT NULL,
    status           text        NOT NULL CHECK (status IN ('PENDING', 'DELIVERED', 'FAILED')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
) WITH (fillfactor = 80);
-- Exactly one terminal callback per assessment, whatever the number of replicas.
CREATE UNIQUE INDEX callbacks_one_terminal_idx ON callbacks (request_id) WHERE terminal;
CREATE INDEX callbacks_created_at_idx ON callbacks (created_at DESC, id);
CREATE INDEX callbacks_request_idx ON callbacks (request_id);

-- +goose Down
DROP TABLE callbacks;
DROP TABLE kyt_alerts;
DROP TABLE kyt_results;
