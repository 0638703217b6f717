package console

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/sqlpage"
)

// Audit actions: what the audit log says was done.
const (
	ActionLogin            = "login"
	ActionLoginFailed      = "login failed"
	ActionLogout           = "logout"
	ActionReveal           = "reveal IVMS101"
	ActionAssign           = "assign"
	ActionStatus           = "status"
	ActionNote             = "note"
	ActionRedeliver        = "redeliver"
	ActionOperatorAdded    = "operator added"
	ActionOperatorDisabled = "operator disabled"
	ActionPasswordReset    = "password reset"
)

// Entry is one line of the audit log: who did what to which id. Detail never holds personal
// data (a note's text is kept with the alert, not here).
type Entry struct {
	ID       int64     `db:"id"`
	At       time.Time `db:"at"`
	Operator string    `db:"operator"`
	Action   string    `db:"action"`
	Subject  string    `db:"subject"`
	Detail   string    `db:"detail"`
	IP       string    `db:"ip"`
}

// Audit is the console's append-only audit log (table console_audit; a trigger refuses every
// UPDATE and DELETE).
type Audit struct{ db *sqlx.DB }

// NewAudit returns the audit log on db.
func NewAudit(db *sqlx.DB) *Audit { return &Audit{db: db} }

// Record appends e.
func (a *Audit) Record(ctx context.Context, e Entry) error {
	return a.recordIn(ctx, a.db, e)
}

func (a *Audit) recordIn(ctx context.Context, q sqlx.ExecerContext, e Entry) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO console_audit (operator, action, subject, detail, ip) VALUES ($1, $2, $3, $4, $5)`,
		e.Operator, e.Action, e.Subject, e.Detail, e.IP); err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditFilter selects entries; zero values select everything.
type AuditFilter struct {
	Operator, Action, Subject string
	Limit, Offset             int
}

// List returns one page of entries, newest first, and how many match.
func (a *Audit) List(ctx context.Context, f AuditFilter) ([]Entry, int, error) {
	var w sqlpage.Where
	if f.Operator != "" {
		w.Add("operator = $%d", f.Operator)
	}
	if f.Action != "" {
		w.Add("action = $%d", f.Action)
	}
	if f.Subject != "" {
		w.Add("subject = $%d", f.Subject)
	}
	var out []Entry
	total, err := sqlpage.Page(ctx, a.db, &out, "console_audit", "id, at, operator, action, subject, detail, ip", "id DESC", w, f.Limit, f.Offset)
	return out, total, err
}
