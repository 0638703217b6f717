// Package outbox is what the enclave's two kinds of outgoing message share — callbacks to the
// VASP's backend (internal/callback) and messages to counterparty enclaves (internal/exchange):
// each is a row recorded in the transaction that caused it, whose delivery the API shows the
// same way and which an operator starts again the same way (Redeliver, RedeliverWhere), the
// redelivery recorded on the row. A callback row is its own delivery work, claimed by a Lane;
// a peer message still has a River job beside it (Table.Job), which runs it in order after the
// messages before it about the same verification.
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// Delivery statuses: PENDING until the receiver acknowledges it (DELIVERED) or its retries end
// (FAILED).
const (
	Pending   = "PENDING"
	Delivered = "DELIVERED"
	Failed    = "FAILED"
)

// Columns are the columns Delivery reads, in every outbox table.
const Columns = `status, attempts, last_status_code, last_error, next_attempt_at, created_at, delivered_at, redeliveries, redelivered_at`

// Delivery is how a message's delivery went, as the API shows it; records embed it.
type Delivery struct {
	Status         string  `json:"status" db:"status"`
	Attempts       int     `json:"attempts" db:"attempts"`
	LastStatusCode *int    `json:"lastStatusCode" db:"last_status_code"`
	LastError      *string `json:"lastError" db:"last_error"`
	// NextAttemptAt is when a PENDING message is (next) attempted; null once it is DELIVERED
	// or FAILED.
	NextAttemptAt *jsontime.Time `json:"nextAttemptAt" db:"-"`
	CreatedAt     jsontime.Time  `json:"createdAt" db:"-"`
	DeliveredAt   *jsontime.Time `json:"deliveredAt" db:"-"`
	// Redeliveries counts the times an operator started the delivery again; RedeliveredAt is
	// the last of them.
	Redeliveries  int            `json:"redeliveries" db:"redeliveries"`
	RedeliveredAt *jsontime.Time `json:"redeliveredAt" db:"-"`
	Next          sql.NullTime   `json:"-" db:"next_attempt_at"`
	Created       time.Time      `json:"-" db:"created_at"`
	Delivered     sql.NullTime   `json:"-" db:"delivered_at"`
	Redelivered   sql.NullTime   `json:"-" db:"redelivered_at"`
}

// Fill sets the API's times from the columns read.
func (d *Delivery) Fill() {
	d.CreatedAt = jsontime.Time{Time: d.Created}
	if d.Next.Valid && d.Status == Pending {
		d.NextAttemptAt = &jsontime.Time{Time: d.Next.Time}
	}
	if d.Delivered.Valid {
		d.DeliveredAt = &jsontime.Time{Time: d.Delivered.Time}
	}
	if d.Redelivered.Valid {
		d.RedeliveredAt = &jsontime.Time{Time: d.Redelivered.Time}
	}
}

// Table is one outbox table as Redeliver and RedeliverWhere start its rows again.
type Table struct {
	// Name is the table; Noun names a row in messages ("Callback(<id>) is not found").
	Name, Noun string
	// Columns are what a row is read as (into Redeliver's dest).
	Columns string
	// Replay lets a DELIVERED row be sent again, as it was (a callback: the receiver lost it
	// and asks again; webhook-id, the row's id, stays the same). Without it only a FAILED row
	// can be redelivered.
	Replay bool
	// Job is the delivery job of row id, for a table whose rows are delivered by River jobs;
	// nil for a table a Lane delivers (its row, due again, is the work).
	Job func(id string) river.JobArgs
}

// redeliverable is the statuses t's rows may be redelivered from, as SQL and as words.
func (t Table) redeliverable() (string, string) {
	if t.Replay {
		return `('FAILED', 'DELIVERED')`, "a FAILED or DELIVERED one"
	}
	return `('FAILED')`, "only a FAILED one"
}

// reset starts rows again: PENDING and due now, attempts from zero so the retry schedule runs
// whole, the redelivery counted. delivered_at keeps the last delivery until the next one.
const reset = `SET status = 'PENDING', attempts = 0, next_attempt_at = now(), redeliveries = redeliveries + 1, redelivered_at = now()`

// Redeliver starts row id of t again in one transaction (reset, and a new delivery job) and
// returns the status it had. dest receives the row as t.Columns read it. An unknown id is
// NOT-FOUND ("<noun>(<id>) is not found"); a row t may not redeliver from its status (PENDING:
// it is being delivered) is BAD-REQUEST; check, when set, may refuse the row too (it sees dest
// as it was).
func Redeliver(ctx context.Context, db *sqlx.DB, jobs *river.Client[*sql.Tx], t Table, id string, dest any,
	check func(context.Context) error) (string, error) {
	id, err := ids.UUID("id", id)
	if err != nil {
		return "", err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var status string
	err = tx.GetContext(ctx, &status, `SELECT status FROM `+t.Name+` WHERE id = $1 FOR UPDATE`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.New(apperr.NotFound, "%s(%s) is not found", t.Noun, id)
	}
	if err != nil {
		return "", fmt.Errorf("load %s %s: %w", t.Name, id, err)
	}
	if err := tx.GetContext(ctx, dest, `SELECT `+t.Columns+` FROM `+t.Name+` WHERE id = $1`, id); err != nil {
		return status, fmt.Errorf("load %s %s: %w", t.Name, id, err)
	}
	if status != Failed && (status != Delivered || !t.Replay) {
		_, which := t.redeliverable()
		return status, apperr.Bad("id: %s %s is %s; %s can be redelivered", t.Noun, id, status, which)
	}
	if check != nil {
		if err := check(ctx); err != nil {
			return status, err
		}
	}
	if err := tx.GetContext(ctx, dest, `UPDATE `+t.Name+` `+reset+` WHERE id = $1 RETURNING `+t.Columns, id); err != nil {
		return status, fmt.Errorf("reset %s %s: %w", t.Name, id, err)
	}
	if t.Job != nil {
		if _, err := jobs.InsertTx(ctx, tx.Tx, t.Job(id), nil); err != nil {
			return status, fmt.Errorf("insert the delivery job of %s %s: %w", t.Name, id, err)
		}
	}
	return status, tx.Commit()
}

// Redelivered is one row RedeliverWhere started again, and the status it had.
type Redelivered struct {
	ID     string `json:"id" db:"id"`
	Status string `json:"previousStatus" db:"status"`
}

// RedeliverWhere starts again, in one transaction, at most max rows of t that match w and may
// be redelivered (FAILED, or DELIVERED when t replays), newest first: each reset and given a
// new delivery job, as Redeliver does one. Rows another transaction holds are skipped. It
// returns the rows started and whether more matched than max (call again for them: a row
// started is PENDING, so no longer matches). w must hold a condition: an empty filter would
// send every message again.
func RedeliverWhere(ctx context.Context, db *sqlx.DB, jobs *river.Client[*sql.Tx], t Table, w sqlpage.Where, max int) ([]Redelivered, bool, error) {
	if w.Empty() {
		return nil, false, apperr.Bad("a filter is required: redelivering every %s at once is never what is meant", t.Noun)
	}
	statuses, _ := t.redeliverable()
	where, args := w.SQL()
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, false, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var rows []Redelivered
	if err := tx.SelectContext(ctx, &rows, fmt.Sprintf(`SELECT id, status FROM %s%s AND status IN %s
		ORDER BY created_at DESC, id LIMIT %d FOR UPDATE SKIP LOCKED`, t.Name, where, statuses, max+1), args...); err != nil {
		return nil, false, fmt.Errorf("select %s to redeliver: %w", t.Name, err)
	}
	more := len(rows) > max
	if more {
		rows = rows[:max]
	}
	if len(rows) == 0 {
		return []Redelivered{}, false, nil
	}
	idList := make([]string, len(rows))
	for i, r := range rows {
		idList[i] = r.ID
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+t.Name+` `+reset+` WHERE id = ANY($1::uuid[])`, idList); err != nil {
		return nil, false, fmt.Errorf("reset %s: %w", t.Name, err)
	}
	if t.Job != nil {
		jobArgs := make([]river.InsertManyParams, len(rows))
		for i, r := range rows {
			jobArgs[i] = river.InsertManyParams{Args: t.Job(r.ID)}
		}
		if _, err := jobs.InsertManyTx(ctx, tx.Tx, jobArgs); err != nil {
			return nil, false, fmt.Errorf("insert the delivery jobs of %s: %w", t.Name, err)
		}
	}
	return rows, more, tx.Commit()
}
