// Package retention deletes what the enclave keeps about a verification once it is older than
// ENCLAVE_RETENTION (DESIGN.md §11): the verification, its assessments, their alerts and their
// callbacks, together, in small batches that never hold up the request path. A verification
// whose assessment is still open, or whose callback is still being delivered, is kept until
// that ends. Without a retention period nothing is ever deleted.
//
// It deletes across tables other packages own (verifications, kyt_results, kyt_alerts,
// callbacks) in one statement per batch: a verification and everything about it go together
// or not at all.
package retention

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// ParsePeriod reads a retention period: days ("1825d") or a Go duration ("720h").
func ParsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 100*365 {
			return 0, fmt.Errorf("want a number of days such as 1825d, got %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("want a period such as 1825d or 720h, got %q", s)
	}
	return d, nil
}

// Counts is what a purge deleted, or would delete.
type Counts struct {
	Verifications, Assessments, Screenings, Alerts, Callbacks, PeerMessages int
}

func (c *Counts) add(o Counts) {
	c.Verifications += o.Verifications
	c.Assessments += o.Assessments
	c.Screenings += o.Screenings
	c.Alerts += o.Alerts
	c.Callbacks += o.Callbacks
	c.PeerMessages += o.PeerMessages
}

// Purger deletes verifications older than its period.
type Purger struct {
	db     *sqlx.DB
	period time.Duration
	log    *slog.Logger
	purged *prometheus.CounterVec
}

// NewPurger returns a Purger for period; reg may be nil.
func NewPurger(db *sqlx.DB, period time.Duration, log *slog.Logger, reg prometheus.Registerer) (*Purger, error) {
	p := &Purger{db: db, period: period, log: log, purged: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "enclave_purged_total", Help: "Rows deleted by retention (ENCLAVE_RETENTION), by table."}, []string{"table"})}
	if reg != nil {
		if err := reg.Register(p.purged); err != nil {
			return nil, fmt.Errorf("retention: register metrics: %w", err)
		}
	}
	return p, nil
}

// due are the verifications v created before $1 that may go: no assessment or screening still
// open, no callback or message to a counterparty still pending.
const due = `v.created_at < $1
	AND NOT EXISTS (SELECT 1 FROM peer_messages m WHERE m.verification_uuid = v.uuid AND m.status = 'PENDING')
	AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.verification_uuid = v.uuid AND c.status = 'PENDING')
	AND NOT EXISTS (SELECT 1 FROM kyt_results k WHERE k.verification_uuid = v.uuid AND k.status IN ('PENDING', 'REGISTERED'))
	AND NOT EXISTS (SELECT 1 FROM screening_results s WHERE s.verification_uuid = v.uuid AND s.status IN ('PENDING', 'REGISTERED'))
	AND NOT EXISTS (SELECT 1 FROM callbacks c WHERE c.status = 'PENDING' AND c.request_id IN (
		SELECT request_id FROM kyt_results WHERE verification_uuid = v.uuid
		UNION ALL SELECT request_id FROM screening_results WHERE verification_uuid = v.uuid))`

// requests are the requestIds of the verifications in old: their assessments and screenings.
const requests = `req AS (SELECT request_id FROM kyt_results WHERE verification_uuid IN (SELECT uuid FROM old)),
		scr AS (SELECT request_id FROM screening_results WHERE verification_uuid IN (SELECT uuid FROM old))`

// Batch deletes one batch of at most n verifications, with everything about them.
func (p *Purger) Batch(ctx context.Context, n int) (Counts, error) {
	var c Counts
	err := p.db.QueryRowxContext(ctx, `WITH old AS (SELECT v.uuid FROM verifications v WHERE `+due+`
			ORDER BY v.created_at LIMIT $2 FOR UPDATE OF v SKIP LOCKED), -- rows another purge holds are skipped
		`+requests+`,
		a AS (DELETE FROM kyt_alerts WHERE request_id IN (SELECT request_id FROM req) RETURNING 1),
		cb AS (DELETE FROM callbacks WHERE request_id IN (SELECT request_id FROM req UNION ALL SELECT request_id FROM scr)
			OR verification_uuid IN (SELECT uuid FROM old) RETURNING 1),
		m AS (DELETE FROM peer_messages WHERE verification_uuid IN (SELECT uuid FROM old) RETURNING 1),
		k AS (DELETE FROM kyt_results WHERE request_id IN (SELECT request_id FROM req) RETURNING 1),
		s AS (DELETE FROM screening_results WHERE request_id IN (SELECT request_id FROM scr) RETURNING 1),
		v AS (DELETE FROM verifications WHERE uuid IN (SELECT uuid FROM old) RETURNING 1)
		SELECT (SELECT count(*) FROM v), (SELECT count(*) FROM k), (SELECT count(*) FROM s), (SELECT count(*) FROM a), (SELECT count(*) FROM cb),
			(SELECT count(*) FROM m)`,
		time.Now().Add(-p.period), n).Scan(&c.Verifications, &c.Assessments, &c.Screenings, &c.Alerts, &c.Callbacks, &c.PeerMessages)
	if err != nil {
		return c, fmt.Errorf("retention: purge: %w", err)
	}
	for table, k := range map[string]int{"verifications": c.Verifications, "kyt_results": c.Assessments, "screening_results": c.Screenings, "kyt_alerts": c.Alerts, "callbacks": c.Callbacks,
		"peer_messages": c.PeerMessages} {
		p.purged.WithLabelValues(table).Add(float64(k))
	}
	return c, nil
}

// Run purges in batches of n until nothing is due, pausing between batches so that the request
// path is never held up, and returns what it deleted.
func (p *Purger) Run(ctx context.Context, n int, pause time.Duration) (Counts, error) {
	var total Counts
	for {
		c, err := p.Batch(ctx, n)
		total.add(c)
		if err != nil || c.Verifications == 0 {
			return total, err
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// DryRun counts what a purge would delete now.
func (p *Purger) DryRun(ctx context.Context) (Counts, error) {
	var c Counts
	err := p.db.QueryRowxContext(ctx, `WITH old AS (SELECT v.uuid FROM verifications v WHERE `+due+`),
		`+requests+`
		SELECT (SELECT count(*) FROM old), (SELECT count(*) FROM req), (SELECT count(*) FROM scr),
			(SELECT count(*) FROM kyt_alerts WHERE request_id IN (SELECT request_id FROM req)),
			(SELECT count(*) FROM callbacks WHERE request_id IN (SELECT request_id FROM req UNION ALL SELECT request_id FROM scr)
				OR verification_uuid IN (SELECT uuid FROM old)),
			(SELECT count(*) FROM peer_messages WHERE verification_uuid IN (SELECT uuid FROM old))`,
		time.Now().Add(-p.period)).Scan(&c.Verifications, &c.Assessments, &c.Screenings, &c.Alerts, &c.Callbacks, &c.PeerMessages)
	if err != nil {
		return c, fmt.Errorf("retention: count: %w", err)
	}
	return c, nil
}

// PurgeArgs is the periodic job that applies retention; River runs periodic jobs on its
// leader only, so one purge runs at a time across replicas.
type PurgeArgs struct{}

// Kind is stable across deploys: never rename it.
func (PurgeArgs) Kind() string { return "retention_purge" }

// PurgeWorker works PurgeArgs.
type PurgeWorker struct {
	river.WorkerDefaults[PurgeArgs]
	P *Purger
}

// Timeout gives a purge of a large backlog time; it is resumable, so a cut is harmless.
func (w *PurgeWorker) Timeout(*river.Job[PurgeArgs]) time.Duration { return 10 * time.Minute }

// Work purges what is due, 500 verifications a batch.
func (w *PurgeWorker) Work(ctx context.Context, _ *river.Job[PurgeArgs]) error {
	if w.P == nil || w.P.period <= 0 {
		return nil // retention is off (a purge left queued when it was on)
	}
	c, err := w.P.Run(ctx, 500, 50*time.Millisecond)
	if c.Verifications > 0 {
		w.P.log.Info("retention: purged", "verifications", c.Verifications, "assessments", c.Assessments, "screenings", c.Screenings,
			"alerts", c.Alerts, "callbacks", c.Callbacks, "peerMessages", c.PeerMessages, "olderThan", w.P.period.String())
	}
	return err
}
