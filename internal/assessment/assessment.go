// Package assessment is what the enclave's two risk assessments — KYT (internal/kytjob) and
// address screening (internal/screening) — share, below both: accepting a keyed request,
// deciding what a failed Chainalysis call means for a job, the terminal transition's
// notification, and the wait for a terminal state that serves Prefer: wait.
package assessment

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/retry"
)

// Statuses every assessment moves through: PENDING (accepted) → REGISTERED (Chainalysis has
// it) → PROCESSED or ERROR.
const (
	StatusPending    = "PENDING"
	StatusRegistered = "REGISTERED"
	StatusProcessed  = "PROCESSED"
	StatusError      = "ERROR"
)

// Terminal reports whether status is final.
func Terminal(status string) bool { return status == StatusProcessed || status == StatusError }

// NewRequestID returns the requestId of a new assessment on route, and the hash of its body
// to keep: a keyed request (Idempotency-Key) gets the id derived from its key, so a retry
// meets the first row; an unkeyed one a random id and no hash.
func NewRequestID(route, key string, body []byte, random string) (string, []byte, error) {
	if key == "" {
		return random, nil, nil
	}
	id, err := ids.FromIdempotencyKey(route, key)
	if err != nil {
		return "", nil, err
	}
	h := sha256.Sum256(body)
	return id, h[:], nil
}

// Accepts stores the new assessments of one table, concurrent requests together: the
// requests that arrive while a transaction is being committed share the next one (group
// commit, internal/batch: no timer, no wait when idle), all their rows in one INSERT and their
// jobs in one insert, each request answered only once its row and job are durable. A batch the
// database refuses is stored again one request at a time, so a bad row fails only its own
// request.
type Accepts struct {
	db    *sqlx.DB
	jobs  *river.Client[*sql.Tx]
	table string
	// insert is the batch's one statement: the rows, a JSON array, read as a record set.
	insert string
	group  batch.Group[accept, accepted]
}

// accept is one request's row to insert and job to insert with it.
type accept struct {
	id  string
	row any
	job river.JobArgs
}

type accepted struct {
	created bool
	err     error
}

// NewAccepts stores new assessments in table of db. columns defines the row as
// jsonb_to_recordset reads it ("request_id uuid, status text, …", request_id among them): each
// request's row marshals to a JSON object with those keys, and a column left out is NULL.
// Attach gives it the River client.
func NewAccepts(db *sqlx.DB, table, columns string) *Accepts {
	var names []string
	for _, c := range strings.Split(columns, ",") {
		names = append(names, strings.Fields(c)[0])
	}
	list := strings.Join(names, ", ")
	a := &Accepts{db: db, table: table, insert: `INSERT INTO ` + table + ` (` + list + `) SELECT ` + list +
		` FROM jsonb_to_recordset($1::jsonb) AS r(` + columns + `) ON CONFLICT (request_id) DO NOTHING RETURNING request_id`}
	a.group.Flush = a.flush
	return a
}

// Attach gives a the River client it inserts jobs with.
func (a *Accepts) Attach(jobs *river.Client[*sql.Tx]) { a.jobs = jobs }

// Store stores a new assessment, its row and its job. A keyed request whose id meets an
// earlier row (its first, accepted already or being accepted: the insert waited for it to
// commit) is answered by acceptedBefore, and created is false.
func (a *Accepts) Store(ctx context.Context, requestID string, sum []byte, notify bool, row any, job river.JobArgs) (created bool, err error) {
	r, err := a.group.Do(ctx, accept{id: requestID, row: row, job: job})
	if err == nil {
		err = r.err
	}
	if err != nil || r.created {
		return r.created, err
	}
	return false, acceptedBefore(ctx, a.db, a.table, requestID, sum, notify)
}

// Hex is a hash as a row's bytea column takes it from JSON; nil (no hash) is NULL.
func Hex(b []byte) *string {
	if b == nil {
		return nil
	}
	h := `\x` + hex.EncodeToString(b)
	return &h
}

// flush stores a batch in one transaction; if it fails, each request in a transaction of its
// own.
func (a *Accepts) flush(ctx context.Context, in []accept) ([]accepted, error) {
	return batch.Alone(in, func(in []accept, out []accepted) error { return a.store(ctx, in, out) },
		func(err error) accepted { return accepted{err: err} }), nil
}

// store inserts the rows of in, and the jobs of those created, in one transaction. A request
// is created when its row was inserted, and only the first of two with the same id.
func (a *Accepts) store(ctx context.Context, in []accept, out []accepted) error {
	rows := make([]any, len(in))
	for i, r := range in {
		rows[i] = r.row
	}
	body, err := json.Marshal(rows)
	if err != nil {
		return fmt.Errorf("accept: %s rows: %w", a.table, err)
	}
	return InTx(ctx, a.db, func(tx *sqlx.Tx) error {
		var inserted []string
		if err := tx.SelectContext(ctx, &inserted, a.insert, string(body)); err != nil {
			return fmt.Errorf("accept: insert %s: %w", a.table, err)
		}
		fresh := make(map[string]bool, len(inserted))
		for _, id := range inserted {
			fresh[strings.ToLower(id)] = true
		}
		jobs := make([]river.InsertManyParams, 0, len(inserted))
		for i, r := range in {
			id := strings.ToLower(r.id)
			out[i] = accepted{created: fresh[id]}
			if fresh[id] {
				delete(fresh, id) // a second request with this id in the batch met the first
				jobs = append(jobs, river.InsertManyParams{Args: r.job})
			}
		}
		if len(jobs) == 0 {
			return nil
		}
		if _, err := a.jobs.InsertManyTx(ctx, tx.Tx, jobs); err != nil {
			return fmt.Errorf("accept: insert %s jobs: %w", a.table, err)
		}
		return nil
	})
}

// ReadTerminal reports whether the assessment requestID of table has reached PROCESSED or
// ERROR (Prefer: wait asks).
func ReadTerminal(ctx context.Context, q sqlx.QueryerContext, table, requestID string) (bool, error) {
	var status string
	if err := sqlx.GetContext(ctx, q, &status, `SELECT status FROM `+table+` WHERE request_id = $1`, requestID); err != nil {
		return false, fmt.Errorf("%s %s: %w", table, requestID, err)
	}
	return Terminal(status), nil
}

// acceptedBefore answers a keyed request whose insert met an existing row of table: the same
// body within the window gets the first requestId again; anything else is BAD-REQUEST. A
// replay that waits (Prefer: wait) makes the first assessment notify when it ends.
func acceptedBefore(ctx context.Context, q sqlx.ExtContext, table, requestID string, sum []byte, notify bool) error {
	var first struct {
		Sum     []byte    `db:"request_sha256"`
		Created time.Time `db:"created_at"`
	}
	if err := sqlx.GetContext(ctx, q, &first, `SELECT request_sha256, created_at FROM `+table+` WHERE request_id = $1`, requestID); err != nil {
		return fmt.Errorf("accept: read the request with the same Idempotency-Key: %w", err)
	}
	if err := ids.Replayed(first.Sum, sum, first.Created); err != nil {
		return err
	}
	if notify {
		if _, err := q.ExecContext(ctx, `UPDATE `+table+` SET notify = true WHERE request_id = $1 AND NOT notify
			AND status IN ('PENDING', 'REGISTERED')`, requestID); err != nil {
			return fmt.Errorf("accept: ask %s to notify: %w", requestID, err)
		}
	}
	return nil
}

// Snoozes is how many times River has snoozed a job: the count its backoffs grow from.
func Snoozes(metadata []byte) int {
	var m struct {
		Snoozes int `json:"snoozes"`
	}
	json.Unmarshal(metadata, &m) //nolint:errcheck // no metadata means no snoozes
	return m.Snoozes
}

// RoomForCall reports whether a job's run has time left for one more Chainalysis call of at
// most callTimeout and the transaction after it. A run that has not snoozes and goes on in
// the next run.
func RoomForCall(ctx context.Context, callTimeout time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > callTimeout+2*time.Second
}

// Failure is what a failed Chainalysis call means for the job that made it.
type Failure struct {
	// Permanent is set when Chainalysis refused the request for good: the assessment ends in
	// ERROR with Code and Message.
	Permanent     bool
	Code, Message string
	// Snooze is the job's answer otherwise: try again after the wait, at least Retry-After,
	// never past the deadline.
	Snooze error
	Wait   time.Duration
}

// Failed classifies err, a failed call to the Chainalysis product named (e.g. "Chainalysis
// KYT"), for a job that would try again after wait and must end by deadline. prefix names the
// error codes of a permanent refusal (KYT → KYT-FORBIDDEN).
func Failed(err error, product, prefix string, wait time.Duration, deadline time.Time) Failure {
	var ce *chainalysis.Error
	if errors.As(err, &ce) && !ce.Transient {
		return Failure{Permanent: true, Code: ErrorCode(prefix, ce.StatusCode),
			Message: fmt.Sprintf("%s answered %d: %s", product, ce.StatusCode, ce.Message)}
	}
	if ra, ok := chainalysis.RetryAfter(err); ok && ra > wait {
		wait = ra
	}
	if left := time.Until(deadline); left < wait {
		wait = max(left, 0) + 10*time.Millisecond
	}
	wait = max(wait, time.Millisecond)
	return Failure{Snooze: river.JobSnooze(wait), Wait: wait}
}

// ErrorCode names a permanent Chainalysis refusal: prefix-FORBIDDEN and the like.
func ErrorCode(prefix string, status int) string {
	switch status {
	case http.StatusBadRequest:
		return prefix + "-BAD-REQUEST"
	case http.StatusForbidden:
		return prefix + "-FORBIDDEN"
	case http.StatusNotFound:
		return prefix + "-NOT-FOUND"
	case http.StatusNotAcceptable:
		return prefix + "-NOT-ACCEPTABLE"
	case http.StatusConflict:
		return prefix + "-CONFLICT"
	default:
		return prefix + "-REJECTED"
	}
}

// InTx runs f in a transaction of db and commits it when f succeeds.
func InTx(ctx context.Context, db *sqlx.DB, f func(*sqlx.Tx) error) error {
	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// ErrNotOpen means another run already took the assessment to a terminal state.
var ErrNotOpen = errors.New("assessment already terminal")

// Ptr is a nullable column's text: nil (JSON null) when NULL.
func Ptr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	return &s.String
}

// Keyed is what both POST routes add to the body they decode: the Idempotency-Key header with
// the body it came with, and whether a request waits for the answer (Prefer: wait), which asks
// the terminal transition to notify.
type Keyed struct {
	IdempotencyKey string `json:"-"`
	Body           []byte `json:"-"`
	Notify         bool   `json:"-"`
}

// Key gives the api package the one place to set them, whichever request embeds Keyed.
func (k *Keyed) Key() *Keyed { return k }

// RunTimeout bounds one run of an assessment's job: two Chainalysis calls of at most
// callTimeout and the transactions around them. River rescues a job of a dead process once it
// has run longer than this (plus a margin).
func RunTimeout(callTimeout time.Duration) time.Duration { return 2*callTimeout + 5*time.Second }

// InsertOpts of an assessment's one job: Chainalysis and receiver failures snooze, never count;
// attempts count failures of the enclave itself (its database), retried long enough to outlive
// an outage.
func InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1000} }

// NextRetry is when an assessment's job runs again after its attempt-th failure of the enclave
// itself: from 1 s, doubling, up to a minute.
func NextRetry(attempt int) time.Time {
	return time.Now().Add(retry.Backoff{Base: time.Second, Cap: time.Minute}.Delay(attempt - 1))
}
