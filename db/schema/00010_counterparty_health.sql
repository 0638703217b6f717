-- +goose Up
-- The health of each counterparty enclave of the peers file (DESIGN.md §13), as the periodic
-- probe of its /healthz last found it, so every replica answers GET /v1/vasps the same without a
-- request waiting on a probe. up is the last probe's verdict; last_seen_at is when the
-- counterparty last answered 2xx; changed_at is when up last changed. No personal data.
CREATE TABLE counterparty_health (
    vasp_id      text        PRIMARY KEY,
    up           boolean     NOT NULL,
    checked_at   timestamptz NOT NULL,
    last_seen_at timestamptz,
    last_error   text,
    changed_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE counterparty_health;
