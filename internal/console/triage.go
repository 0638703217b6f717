package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/seal"
)

// Status is the enclave's own triage status of a KYT alert, kept beside Chainalysis's.
type Status string

// Triage statuses. An alert nobody touched is Unreviewed.
const (
	Unreviewed Status = "Unreviewed"
	InReview   Status = "In Review"
	Flagged    Status = "Flagged"
	Dismissed  Status = "Dismissed"
	NoReview   Status = "No Review"
)

// transitions is the triage state machine in one place: the statuses each may move to. An
// alert is taken into review, then closed (Flagged, Dismissed, or No Review); a closed alert
// may be reopened. Flagged and Dismissed need a note (needsNote).
var transitions = map[Status][]Status{
	Unreviewed: {InReview, NoReview},
	InReview:   {Flagged, Dismissed, NoReview, Unreviewed},
	Flagged:    {InReview},
	Dismissed:  {InReview},
	NoReview:   {InReview},
}

// needsNote are the statuses a note must explain.
var needsNote = map[Status]bool{Flagged: true, Dismissed: true}

// openStatuses are those of alerts still waiting on an analyst: the queue's default.
var openStatuses = []string{string(Unreviewed), string(InReview)}

// Statuses lists every triage status in the order of the state machine.
var Statuses = []Status{Unreviewed, InReview, Flagged, Dismissed, NoReview}

// Next returns the statuses s may move to.
func (s Status) Next() []Status { return transitions[s] }

// Triage is one alert's triage state.
type Triage struct {
	AlertID   string         `db:"alert_id"`
	Status    Status         `db:"status"`
	Assignee  sql.NullString `db:"assignee"`
	UpdatedAt time.Time      `db:"updated_at"`
}

// Note is an analyst's note on an alert.
type Note struct {
	Operator  string    `db:"operator"`
	Body      string    `db:"body"`
	CreatedAt time.Time `db:"created_at"`
}

// Triages keeps the console's triage of alerts (console_alert_triage, console_alert_notes),
// auditing every change in the same transaction. Notes are sealed at rest with the data keyset:
// an analyst's words may name a person.
type Triages struct {
	db    *sqlx.DB
	audit *Audit
	seal  *seal.Sealer
}

// NewTriages returns the triage store on db, sealing notes with s.
func NewTriages(db *sqlx.DB, s *seal.Sealer) *Triages {
	return &Triages{db: db, audit: NewAudit(db), seal: s}
}

// noteAAD binds a sealed note to its alert: it opens nowhere else.
func noteAAD(alertID string) []byte { return []byte("console-note/" + alertID) }

// noteRow is a note as stored: its text in body (written before notes were sealed, until
// rekey) or sealed in body_sealed.
type noteRow struct {
	ID       int64          `db:"id"`
	AlertID  string         `db:"alert_id"`
	Operator string         `db:"operator"`
	Body     sql.NullString `db:"body"`
	Sealed   []byte         `db:"body_sealed"`
	At       time.Time      `db:"created_at"`
}

func (t *Triages) open(r noteRow) (string, error) {
	if r.Sealed == nil {
		return r.Body.String, nil
	}
	b, err := t.seal.Open(r.Sealed, noteAAD(r.AlertID))
	if err != nil {
		return "", fmt.Errorf("open note %d: %w", r.ID, err)
	}
	return string(b), nil
}

// errTransition is a status change the state machine does not allow, or one without its note.
type errTransition struct{ msg string }

func (e errTransition) Error() string { return e.msg }

// Get returns the triage of each of ids that has one; the others are Unreviewed.
func (t *Triages) Get(ctx context.Context, ids []string) (map[string]Triage, error) {
	out := map[string]Triage{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []Triage
	if err := t.db.SelectContext(ctx, &rows, `SELECT alert_id, status, assignee, updated_at FROM console_alert_triage
		WHERE alert_id = ANY($1)`, ids); err != nil {
		return nil, fmt.Errorf("load triage: %w", err)
	}
	for _, r := range rows {
		out[r.AlertID] = r
	}
	return out, nil
}

const noteColumns = `id, alert_id, operator, body, body_sealed, created_at`

// Notes returns the notes on an alert, oldest first.
func (t *Triages) Notes(ctx context.Context, alertID string) ([]Note, error) {
	var rows []noteRow
	if err := t.db.SelectContext(ctx, &rows, `SELECT `+noteColumns+` FROM console_alert_notes
		WHERE alert_id = $1 ORDER BY created_at, id`, alertID); err != nil {
		return nil, fmt.Errorf("load notes: %w", err)
	}
	out := make([]Note, len(rows))
	for i, r := range rows {
		body, err := t.open(r)
		if err != nil {
			return nil, err
		}
		out[i] = Note{Operator: r.Operator, Body: body, CreatedAt: r.At}
	}
	return out, nil
}

// Rekey seals under the keyset's primary key up to batch notes that are not — notes written
// before notes were sealed, and notes sealed with an older key — and says how many are left.
// Like the payloads' rekey (verification.Service.Rekey), each batch is one short transaction
// that skips rows another process holds. `enclave rekey` runs it after the payloads.
func (t *Triages) Rekey(ctx context.Context, batch int) (resealed, remaining int, err error) {
	primary := int64(t.seal.Primary())
	tx, err := t.db.BeginTxx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var rows []noteRow
	if err := tx.SelectContext(ctx, &rows, `SELECT `+noteColumns+` FROM console_alert_notes
		WHERE body_sealed IS NULL OR body_key_id IS DISTINCT FROM $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, primary, batch); err != nil {
		return 0, 0, fmt.Errorf("rekey notes: select: %w", err)
	}
	for _, r := range rows {
		body, err := t.open(r)
		if err != nil {
			return 0, 0, err
		}
		sealed, keyID, err := t.sealNote(r.AlertID, body)
		if err != nil {
			return 0, 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE console_alert_notes SET body = NULL, body_sealed = $2, body_key_id = $3 WHERE id = $1`,
			r.ID, sealed, keyID); err != nil {
			return 0, 0, fmt.Errorf("rekey note %d: %w", r.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	if err := t.db.GetContext(ctx, &remaining, `SELECT count(*) FROM console_alert_notes
		WHERE body_sealed IS NULL OR body_key_id IS DISTINCT FROM $1`, primary); err != nil {
		return len(rows), 0, fmt.Errorf("rekey notes: count: %w", err)
	}
	return len(rows), remaining, nil
}

func (t *Triages) sealNote(alertID, body string) ([]byte, int64, error) {
	c, err := t.seal.Seal([]byte(body), noteAAD(alertID))
	if err != nil {
		return nil, 0, fmt.Errorf("seal note: %w", err)
	}
	return c, int64(seal.KeyID(c)), nil
}

// change locks the alert's triage row (made Unreviewed when missing) and runs f on it in one
// transaction.
func (t *Triages) change(ctx context.Context, alertID string, f func(tx *sqlx.Tx, cur Triage) error) error {
	tx, err := t.db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if _, err := tx.ExecContext(ctx, `INSERT INTO console_alert_triage (alert_id) VALUES ($1) ON CONFLICT DO NOTHING`, alertID); err != nil {
		return fmt.Errorf("triage alert %s: %w", alertID, err)
	}
	var cur Triage
	if err := tx.GetContext(ctx, &cur, `SELECT alert_id, status, assignee, updated_at FROM console_alert_triage
		WHERE alert_id = $1 FOR UPDATE`, alertID); err != nil {
		return fmt.Errorf("lock triage of %s: %w", alertID, err)
	}
	if err := f(tx, cur); err != nil {
		return err
	}
	return tx.Commit()
}

// Assign makes operator the alert's assignee.
func (t *Triages) Assign(ctx context.Context, alertID, operator, ip string) error {
	return t.change(ctx, alertID, func(tx *sqlx.Tx, cur Triage) error {
		if _, err := tx.ExecContext(ctx, `UPDATE console_alert_triage SET assignee = $2, updated_at = now() WHERE alert_id = $1`,
			alertID, operator); err != nil {
			return fmt.Errorf("assign %s: %w", alertID, err)
		}
		from := cur.Assignee.String
		if from == "" {
			from = "nobody"
		}
		return t.audit.recordIn(ctx, tx, Entry{Operator: operator, Action: ActionAssign, Subject: alertID, Detail: from + " → " + operator, IP: ip})
	})
}

// SetStatus moves the alert to status to, with a note (required for Flagged and Dismissed).
func (t *Triages) SetStatus(ctx context.Context, alertID string, to Status, note, operator, ip string) error {
	note = strings.TrimSpace(note)
	return t.change(ctx, alertID, func(tx *sqlx.Tx, cur Triage) error {
		if !slices.Contains(transitions[cur.Status], to) {
			return errTransition{fmt.Sprintf("an alert %s cannot move to %s", cur.Status, to)}
		}
		if needsNote[to] && note == "" {
			return errTransition{fmt.Sprintf("%s needs a note saying why", to)}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE console_alert_triage SET status = $2, updated_at = now() WHERE alert_id = $1`,
			alertID, string(to)); err != nil {
			return fmt.Errorf("set status of %s: %w", alertID, err)
		}
		if err := t.audit.recordIn(ctx, tx, Entry{Operator: operator, Action: ActionStatus, Subject: alertID,
			Detail: string(cur.Status) + " → " + string(to), IP: ip}); err != nil {
			return err
		}
		if note != "" {
			return t.noteIn(ctx, tx, alertID, note, operator, ip)
		}
		return nil
	})
}

// AddNote adds a note to the alert.
func (t *Triages) AddNote(ctx context.Context, alertID, note, operator, ip string) error {
	note = strings.TrimSpace(note)
	if note == "" {
		return errTransition{"a note cannot be empty"}
	}
	return t.change(ctx, alertID, func(tx *sqlx.Tx, _ Triage) error { return t.noteIn(ctx, tx, alertID, note, operator, ip) })
}

func (t *Triages) noteIn(ctx context.Context, tx *sqlx.Tx, alertID, note, operator, ip string) error {
	if len(note) > 4000 {
		return errTransition{"a note holds at most 4000 bytes"}
	}
	sealed, keyID, err := t.sealNote(alertID, note)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO console_alert_notes (alert_id, operator, body_sealed, body_key_id) VALUES ($1, $2, $3, $4)`,
		alertID, operator, sealed, keyID); err != nil {
		return fmt.Errorf("add note to %s: %w", alertID, err)
	}
	return t.audit.recordIn(ctx, tx, Entry{Operator: operator, Action: ActionNote, Subject: alertID, Detail: "note added", IP: ip})
}

// conditions narrow kytjob's alert listing by triage status ("open" for Unreviewed and In
// Review, "" for any), assignee and the lack of one, over this package's own table.
func conditions(status, assignee string, unassigned bool) ([]kytjob.IDCondition, error) {
	var out []kytjob.IDCondition
	switch {
	case status == "":
	case status == "open":
		out = append(out, kytjob.IDCondition{SQL: "NOT IN (SELECT alert_id FROM console_alert_triage WHERE status <> ALL($%d))", Arg: openStatuses})
	case status == string(Unreviewed):
		out = append(out, kytjob.IDCondition{SQL: "NOT IN (SELECT alert_id FROM console_alert_triage WHERE status <> $%d)", Arg: status})
	case slices.Contains(Statuses, Status(status)):
		out = append(out, kytjob.IDCondition{SQL: "IN (SELECT alert_id FROM console_alert_triage WHERE status = $%d)", Arg: status})
	default:
		return nil, errors.New("status: want open, any, or one of Unreviewed, In Review, Flagged, Dismissed, No Review")
	}
	if assignee != "" {
		out = append(out, kytjob.IDCondition{SQL: "IN (SELECT alert_id FROM console_alert_triage WHERE assignee = $%d)", Arg: assignee})
	}
	if unassigned {
		// An alert without a triage row has no assignee either. The argument only fills the
		// placeholder every condition has.
		out = append(out, kytjob.IDCondition{SQL: "NOT IN (SELECT alert_id FROM console_alert_triage WHERE assignee IS NOT NULL AND $%d)", Arg: true})
	}
	return out, nil
}
