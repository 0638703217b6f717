package console

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
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
	ActionRoleChanged      = "role changed"
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
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"operator", f.Operator}, {"action", f.Action}, {"subject", f.Subject}} {
		if c.v != "" {
			args = append(args, c.v)
			conds = append(conds, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	var total int
	if err := a.db.GetContext(ctx, &total, `SELECT count(*) FROM console_audit`+where, args...); err != nil {
		return nil, 0, fmt.Errorf("count audit: %w", err)
	}
	var out []Entry
	q := fmt.Sprintf(`SELECT id, at, operator, action, subject, detail, ip FROM console_audit%s ORDER BY id DESC LIMIT %d OFFSET %d`,
		where, f.Limit, f.Offset)
	if err := a.db.SelectContext(ctx, &out, q, args...); err != nil {
		return nil, 0, fmt.Errorf("list audit: %w", err)
	}
	return out, total, nil
}
