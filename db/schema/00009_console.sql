-- +goose Up
-- The operator console (DESIGN.md §14), owned by internal/console. No personal data lands in
-- these tables: operators are the VASP's own staff (a name, a role, a bcrypt hash), the audit
-- log names what was done to which id, and notes are an analyst's words about an alert.

-- Operators who log in to the console. A disabled operator cannot log in, and their sessions
-- end at their next request.
CREATE TABLE console_operators (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    role          text        NOT NULL CHECK (role IN ('viewer', 'analyst', 'admin')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    disabled_at   timestamptz,
    last_login_at timestamptz
);

-- Server-side sessions: the table github.com/alexedwards/scs/postgresstore reads and writes.
CREATE TABLE console_sessions (
    token  text PRIMARY KEY,
    data   bytea       NOT NULL,
    expiry timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expiry);

-- The enclave's own triage of a KYT alert, beside (never instead of) Chainalysis's alert_status.
-- An alert with no row is Unreviewed. Retention deletes it with its alert.
CREATE TABLE console_alert_triage (
    alert_id   text PRIMARY KEY REFERENCES kyt_alerts (alert_id) ON DELETE CASCADE,
    status     text        NOT NULL DEFAULT 'Unreviewed'
        CHECK (status IN ('Unreviewed', 'In Review', 'Flagged', 'Dismissed', 'No Review')),
    assignee   text REFERENCES console_operators (name),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_alert_triage_status_idx ON console_alert_triage (status, alert_id);
CREATE INDEX console_alert_triage_assignee_idx ON console_alert_triage (assignee, alert_id);

-- Notes on an alert, kept apart from the audit log: an analyst's free text is theirs to word,
-- and the audit log must hold no personal data. Retention deletes them with their alert.
CREATE TABLE console_alert_notes (
    id         bigserial PRIMARY KEY,
    alert_id   text        NOT NULL REFERENCES kyt_alerts (alert_id) ON DELETE CASCADE,
    operator   text        NOT NULL,
    body       text        NOT NULL CHECK (length(body) BETWEEN 1 AND 4000),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_alert_notes_alert_idx ON console_alert_notes (alert_id, created_at);

-- Who did what, when: logins (and failed ones), reveals of personal data, status changes,
-- assignments, notes added, redeliveries, operator changes. Append-only: a trigger refuses
-- every UPDATE and DELETE. subject is the id acted on; detail never holds personal data.
CREATE TABLE console_audit (
    id       bigserial PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    operator text        NOT NULL,
    action   text        NOT NULL,
    subject  text        NOT NULL DEFAULT '',
    detail   text        NOT NULL DEFAULT '',
    ip       text        NOT NULL DEFAULT ''
);
CREATE INDEX console_audit_subject_idx ON console_audit (subject, id) WHERE subject <> '';
CREATE INDEX console_audit_operator_idx ON console_audit (operator, id);

-- +goose StatementBegin
CREATE FUNCTION console_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'console_audit is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER console_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON console_audit
    FOR EACH STATEMENT EXECUTE FUNCTION console_audit_append_only();

-- +goose Down
DROP TABLE console_audit;
DROP FUNCTION console_audit_append_only();
DROP TABLE console_alert_notes;
DROP TABLE console_alert_triage;
DROP TABLE console_sessions;
DROP TABLE console_operators;
