-- +goose Up
-- TRP (DESIGN.md §15): a verification whose counterparty speaks OpenVASP's Travel Rule
-- Protocol has one row here, beside its verifications row, on either side of the transfer.
--   endpoint            originator: the URL the inquiry is POSTed to (the Travel Address's URL,
--                       or the peers file's); NULL on the beneficiary's side.
--   token               the unguessable last segment of our per-verification callback route
--                       (POST /callbacks/{token} on the TRP listener): its knowledge is the
--                       counterparty's authority to answer about this verification.
--   counterparty_callback  beneficiary: the inquiry's callback (where our approve or reject
--                       goes); originator: the approved callback (where txid or canceled goes).
--   request_identifier  the transfer's request-identifier header, the same on every retry.
-- No personal data: the IVMS101 stays in the verification's sealed payload.
CREATE TABLE trp_transfers (
    verification_uuid     uuid PRIMARY KEY REFERENCES verifications (uuid) ON DELETE CASCADE,
    endpoint              text,
    token                 text NOT NULL UNIQUE,
    counterparty_callback text,
    request_identifier    text NOT NULL,
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE trp_transfers;
