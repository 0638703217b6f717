-- +goose Up
CREATE TABLE verifications (
    uuid                   uuid PRIMARY KEY,
    role                   text        NOT NULL CHECK (role IN ('ORIGINATOR', 'BENEFICIARY')),
    originating_vasp_id    text        NOT NULL,
    beneficiary_vasp_id    text        NOT NULL,
    network                text,
    asset                  text        NOT NULL,
    amount                 numeric     NOT NULL CHECK (amount > 0),
    trade_price            numeric,
    trade_currency         text,
    trade_iso_datetime     text,
    is_exceeding_threshold boolean,
    originator_address     text,
    beneficiary_address    text        NOT NULL,
    -- The IVMS101 payload, kept in one column behind one store function so that encryption
    -- at rest stays a local change.
    payload                jsonb       NOT NULL,
    -- SHA-256 of the request that created the row, so a replayed peer request is recognised.
    request_sha256         bytea       NOT NULL,
    tx_hash                text,
    vout                   integer CHECK (vout >= 0),
    ordered_at             timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX verifications_created_at_idx ON verifications (created_at DESC, uuid);
CREATE INDEX verifications_tx_hash_idx ON verifications (tx_hash) WHERE tx_hash IS NOT NULL;

-- +goose Down
DROP TABLE verifications;
