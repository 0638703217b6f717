// Package outbox is what the enclave's two kinds of outgoing message share — callbacks to the
// VASP's backend (internal/callback) and messages to counterparty enclaves (internal/exchange):
// each is a row recorded in the transaction that caused it, with its delivery job, whose
// delivery the API shows the same way and which an operator starts again the same way once it
// FAILED.
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
)

// Delivery statuses: PENDING until the receiver acknowledges it (DELIVERED) or its retries end
// (FAILED).
const (
	Pending   = "PENDING"
	Delivered = "DELIVERED"
	Failed    = "FAILED"
)

// Columns are the columns Delivery reads, in every outbox table.
const Columns = `status, attempts, last_status_code, last_error, created_at, delivered_at`

// Delivery is how a message's delivery went, as the API shows it; records embed it.
type Delivery struct {
	Status         string         `json:"status" db:"status"`
	Attempts       int            `json:"attempts" db:"attempts"`
	LastStatusCode *int           `json:"lastStatusCode" db:"last_status_code"`
	LastError      *string        `json:"lastError" db:"last_error"`
	CreatedAt      jsontime.Time  `json:"createdAt" db:"-"`
	DeliveredAt    *jsontime.Time `json:"deliveredAt" db:"-"`
	Created        time.Time      `json:"-" db:"created_at"`
	Delivered      sql.NullTime   `json:"-" db:"delivered_at"`
}

// Fill sets the API's times from the columns read.
func (d *Delivery) Fill() {
	d.CreatedAt = jsontime.Time{Time: d.Created}
	if d.Delivered.Valid {
		d.DeliveredAt = &jsontime.Time{Time: d.Delivered.Time}
	}
}

// Redeliver starts the FAILED row id of table again, in one transaction: its attempts from
// zero, PENDING, and a new delivery job. dest receives the row as cols read it. An unknown id is
// NOT-FOUND ("<noun>(<id>) is not found"); another status is BAD-REQUEST; check, when set, may
// refuse the row too (it sees dest as it was).
func Redeliver(ctx context.Context, db *sqlx.DB, jobs *river.Client[*sql.Tx], table, noun, cols, id string, dest any,
	job func(id string) river.JobArgs, check func(context.Context) error) error {
	id, err := ids.UUID("id", id)
	if err != nil {
		return err
	}
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var status string
	err = tx.GetContext(ctx, &status, `SELECT status FROM `+table+` WHERE id = $1 FOR UPDATE`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return apperr.New(apperr.NotFound, "%s(%s) is not found", noun, id)
	}
	if err != nil {
		return fmt.Errorf("load %s %s: %w", table, id, err)
	}
	if err := tx.GetContext(ctx, dest, `SELECT `+cols+` FROM `+table+` WHERE id = $1`, id); err != nil {
		return fmt.Errorf("load %s %s: %w", table, id, err)
	}
	if status != Failed {
		return apperr.Bad("id: %s %s is %s; only a FAILED one can be redelivered", noun, id, status)
	}
	if check != nil {
		if err := check(ctx); err != nil {
			return err
		}
	}
	if err := tx.GetContext(ctx, dest, `UPDATE `+table+` SET status = 'PENDING', attempts = 0 WHERE id = $1 RETURNING `+cols, id); err != nil {
		return fmt.Errorf("reset %s %s: %w", table, id, err)
	}
	if _, err := jobs.InsertTx(ctx, tx.Tx, job(id), nil); err != nil {
		return fmt.Errorf("insert the delivery job of %s %s: %w", table, id, err)
	}
	return tx.Commit()
}
