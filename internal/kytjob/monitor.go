package kytjob

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/webhook"
)

// Monitoring (KYT guide, Workflow 4): Chainalysis keeps screening every registered transfer and
// raises alerts later — an address identified as sanctioned next month alerts on last month's
// deposit. The sync pulls them in from GET /v1/alerts, matches each new one to our TRANSFER
// assessment by userId + transferReference + asset, and stores it with source MONITORING, in
// one transaction per assessment that also enqueues one CHAINALYSIS_KYT_ALERT callback carrying
// only the new alerts. Known alerts have their analyst status kept up to date.
//
// Nothing is lost or doubled, whatever is interrupted: an alert is stored, and its callback
// enqueued, only by the transaction that inserts it (alert ids are unique), so two syncs at once
// or a sync repeated after a crash store each alert once and call back once; the cursor moves
// only past pages already stored, and each run reads again from a little before it.

const (
	// monitorOverlap is how far before the cursor each run reads again: an alert created at the
	// boundary, or made visible late, is not missed.
	monitorOverlap = 5 * time.Minute
	// monitorStatusWindow is how far back alerts are read again, for their status and for any
	// still new to us.
	monitorStatusWindow = 24 * time.Hour
)

// MonitorArgs is the periodic monitoring sync. River's leader enqueues it every
// ENCLAVE_KYT_MONITOR_INTERVAL; it is unique while unfinished, so one runs at a time across
// replicas.
type MonitorArgs struct{}

// Kind is stable across deploys: never rename it.
func (MonitorArgs) Kind() string { return "kyt_monitor" }

// InsertOpts: at most one unfinished sync; a failed one is retried a few times, and the next
// interval's starts afresh anyway.
func (MonitorArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled}}}
}

// MonitorWorker works MonitorArgs.
type MonitorWorker struct {
	river.WorkerDefaults[MonitorArgs]
	S *Service
}

// Timeout bounds one run like an assessment's; a run that runs out of room goes on in the next.
func (w *MonitorWorker) Timeout(*river.Job[MonitorArgs]) time.Duration { return w.S.RunTimeout() }

// Work runs one sync; a Chainalysis failure (a 5xx or 429 mid-page) snoozes it, resuming from
// the last page stored.
func (w *MonitorWorker) Work(ctx context.Context, j *river.Job[MonitorArgs]) error {
	s := w.S
	if s.kyt == nil {
		return nil
	}
	err := s.Sync(ctx)
	var ce *chainalysis.Error
	switch {
	case errors.Is(err, errOutOfRoom):
		return river.JobSnooze(time.Millisecond)
	case errors.As(err, &ce):
		s.monitorRuns.WithLabelValues("chainalysis_error").Inc()
		n := assessment.Snoozes(j.Metadata)
		if n >= 20 {
			return nil // the next interval's sync takes over
		}
		wait := s.cfg.Register.Delay(min(n, 6))
		f := assessment.Failed(err, "Chainalysis KYT", "KYT", wait, time.Now().Add(time.Hour))
		if !f.Permanent {
			wait = f.Wait // at least Retry-After
		}
		s.log.Warn("monitoring sync: Chainalysis failed; will retry", "retryIn", wait.String(), "err", err.Error())
		return river.JobSnooze(wait)
	case err != nil:
		s.monitorRuns.WithLabelValues("error").Inc()
		return err
	}
	s.monitorRuns.WithLabelValues("ok").Inc()
	return nil
}

var errOutOfRoom = errors.New("monitoring sync: no room left in this run")

// Sync pulls in every alert created since the stored cursor (less the overlap), then reads the
// alerts created in the day before for their status (and any still new to us). It is what the
// periodic job runs.
func (s *Service) Sync(ctx context.Context) error {
	s.hook(ctx, "sync", "")
	var cursor time.Time
	err := s.work.GetContext(ctx, &cursor, `SELECT cursor FROM kyt_monitor`)
	if errors.Is(err, sql.ErrNoRows) {
		// First sync: from the first transfer we registered (alerts before it cannot be ours).
		err = s.work.GetContext(ctx, &cursor, `SELECT COALESCE(min(created_at), now()) FROM kyt_results`)
	}
	if err != nil {
		return fmt.Errorf("monitoring sync: read the cursor: %w", err)
	}
	from := cursor.Add(-monitorOverlap)
	if err := s.readAlerts(ctx, chainalysis.AlertsQuery{CreatedAtGTE: &from, Sort: "createdAt asc"}, cursor); err != nil {
		return err
	}
	if _, err := s.work.ExecContext(ctx, `INSERT INTO kyt_monitor (cursor, synced_at) VALUES ($1, now())
		ON CONFLICT (id) DO UPDATE SET synced_at = now()`, cursor); err != nil {
		return fmt.Errorf("monitoring sync: record it: %w", err)
	}
	// Statuses change on older alerts too (an analyst dismisses yesterday's): those created in
	// the day before the first pass are read again. One of them still new to us is stored as
	// well: an alert raised while its assessment was open is left to that assessment, which may
	// then have ended in ERROR without reading it.
	since := time.Now().Add(-monitorStatusWindow)
	if since.Before(from) {
		until := from
		if err := s.readAlerts(ctx, chainalysis.AlertsQuery{CreatedAtGTE: &since, CreatedAtLTE: &until, Sort: "createdAt asc"}, cursor); err != nil {
			return err
		}
	}
	return nil
}

// readAlerts pages through q, storing each page (see storePage). cursor is where this sync
// started: alerts created after it are read for the first time.
func (s *Service) readAlerts(ctx context.Context, q chainalysis.AlertsQuery, cursor time.Time) error {
	q.Limit = s.cfg.MonitorPage
	if s.unsorted.Load() {
		q.Sort = ""
	}
	for {
		if !assessment.RoomForCall(ctx, s.cfg.CallTimeout) {
			return errOutOfRoom
		}
		page, err := s.kyt.Alerts(ctx, q)
		var ce *chainalysis.Error
		if errors.As(err, &ce) && ce.StatusCode == http.StatusBadRequest && q.Sort != "" {
			// An API that refuses the sort: read in its default order (alertStatusCreatedAt,
			// which for new alerts is their creation); the overlap covers what moves.
			s.log.Warn("monitoring sync: GET /v1/alerts refused sort=createdAt; reading in the default order", "err", err.Error())
			s.unsorted.Store(true)
			q.Sort = ""
			continue
		}
		if err != nil {
			return err
		}
		s.hook(ctx, "page", strconv.Itoa(len(page.Data)))
		if err := s.storePage(ctx, page.Data, cursor); err != nil {
			return err
		}
		q.Offset += len(page.Data)
		// The last page: a short one, or the total reached (an answer without a total is read
		// until a short page).
		if len(page.Data) < q.Limit || (page.Total > 0 && q.Offset >= page.Total) {
			return nil
		}
	}
}

// storePage stores what one page of alerts brings: status changes of known alerts and the new
// ones, then moves the cursor to the newest alert of the page. Alerts created before cursor were
// read by an earlier sync: the metrics count each alert once, when first read.
func (s *Service) storePage(ctx context.Context, alerts []chainalysis.V1Alert, cursor time.Time) error {
	if len(alerts) == 0 {
		return nil
	}
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		ids[i] = a.AlertIdentifier
	}
	var known []string
	if err := s.work.SelectContext(ctx, &known, `SELECT alert_id FROM kyt_alerts WHERE alert_id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("monitoring sync: look up alerts: %w", err)
	}
	isKnown := make(map[string]bool, len(known))
	for _, id := range known {
		isKnown[id] = true
	}
	if err := s.updateStatuses(ctx, alerts, isKnown); err != nil {
		return err
	}
	firstRead := func(a chainalysis.V1Alert) bool {
		t, err := chainalysis.ParseTime(a.CreatedAt)
		return err != nil || t.After(cursor)
	}
	// New alerts, by the transfer they are about.
	type transferKey struct{ user, ref, asset string }
	byTransfer := map[transferKey][]chainalysis.V1Alert{}
	var newest time.Time
	for _, a := range alerts {
		if t, err := chainalysis.ParseTime(a.CreatedAt); err == nil && t.After(newest) {
			newest = t
		}
		if isKnown[a.AlertIdentifier] {
			if firstRead(a) {
				s.monitorAlerts.WithLabelValues("known").Inc()
			}
			continue
		}
		if a.TransferReference == nil || *a.TransferReference == "" {
			if firstRead(a) {
				s.monitorAlerts.WithLabelValues("unmatched").Inc() // a withdrawal attempt's, or not a transfer's
			}
			continue
		}
		k := transferKey{a.UserID, *a.TransferReference, strings.ToUpper(a.Asset)}
		byTransfer[k] = append(byTransfer[k], a)
	}
	if len(byTransfer) > 0 {
		var users, refs, assets []string
		for k := range byTransfer {
			users, refs, assets = append(users, k.user), append(refs, k.ref), append(assets, k.asset)
		}
		var matches []struct {
			RequestID string `db:"request_id"`
			User      string `db:"user_id"`
			Ref       string `db:"ref"`
			Asset     string `db:"asset"`
		}
		// The latest terminal TRANSFER assessment of each transfer (an open one reads its alerts
		// itself when it is processed).
		if err := s.work.SelectContext(ctx, &matches, `SELECT DISTINCT ON (m.user_id, m.ref, m.asset) k.request_id, m.user_id, m.ref, m.asset
			FROM unnest($1::text[], $2::text[], $3::text[]) AS m(user_id, ref, asset)
			JOIN kyt_results k ON k.api_type = 'TRANSFER' AND k.user_id = m.user_id AND k.transfer_ref = m.ref
				AND upper(k.asset) = m.asset AND k.status IN ('PROCESSED', 'ERROR')
			ORDER BY m.user_id, m.ref, m.asset, k.created_at DESC`, users, refs, assets); err != nil {
			return fmt.Errorf("monitoring sync: match alerts: %w", err)
		}
		for _, m := range matches {
			k := transferKey{m.User, m.Ref, m.Asset}
			if err := s.storeMonitored(ctx, m.RequestID, byTransfer[k]); err != nil {
				return err
			}
			delete(byTransfer, k)
		}
		for _, left := range byTransfer {
			for _, a := range left {
				if firstRead(a) {
					s.monitorAlerts.WithLabelValues("unmatched").Inc()
				}
			}
		}
	}
	if !newest.IsZero() {
		if _, err := s.work.ExecContext(ctx, `INSERT INTO kyt_monitor (cursor) VALUES ($1)
			ON CONFLICT (id) DO UPDATE SET cursor = GREATEST(kyt_monitor.cursor, EXCLUDED.cursor)`, newest); err != nil {
			return fmt.Errorf("monitoring sync: move the cursor: %w", err)
		}
	}
	return nil
}

// updateStatuses keeps the analyst status of known alerts as KYT shows it.
func (s *Service) updateStatuses(ctx context.Context, alerts []chainalysis.V1Alert, isKnown map[string]bool) error {
	var ids, statuses []string
	var ats []*time.Time
	for _, a := range alerts {
		if !isKnown[a.AlertIdentifier] || a.AlertStatus == "" {
			continue
		}
		var at *time.Time
		if a.AlertStatusCreatedAt != nil {
			if t, err := chainalysis.ParseTime(*a.AlertStatusCreatedAt); err == nil {
				at = &t
			}
		}
		ids, statuses, ats = append(ids, a.AlertIdentifier), append(statuses, a.AlertStatus), append(ats, at)
	}
	if len(ids) == 0 {
		return nil
	}
	res, err := s.work.ExecContext(ctx, `UPDATE kyt_alerts a SET alert_status = u.status, alert_status_created_at = u.at
		FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS u(id, status, at)
		WHERE a.alert_id = u.id AND (a.alert_status IS DISTINCT FROM u.status OR a.alert_status_created_at IS DISTINCT FROM u.at)`,
		ids, statuses, ats)
	if err != nil {
		return fmt.Errorf("monitoring sync: update alert statuses: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil {
		s.monitorAlerts.WithLabelValues("status_changed").Add(float64(n))
	}
	return nil
}

// storeMonitored stores new alerts of one assessment and, if any was not stored before, enqueues
// one CHAINALYSIS_KYT_ALERT with the assessment as it now stands and only those alerts — all in
// one transaction.
func (s *Service) storeMonitored(ctx context.Context, requestID string, alerts []chainalysis.V1Alert) error {
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var r row
		if err := tx.GetContext(ctx, &r, `SELECT `+resultColumns+` FROM kyt_results WHERE request_id = $1 FOR UPDATE`, requestID); err != nil {
			return fmt.Errorf("monitoring sync: lock assessment %s: %w", requestID, err)
		}
		var fresh []alertRow
		for _, a := range alerts {
			created, err := chainalysis.ParseTime(a.CreatedAt)
			if err != nil {
				created = time.Now().UTC()
			}
			ar := alertRow{AlertID: a.AlertIdentifier, RequestID: requestID, ExternalID: r.ExternalID.String, AlertLevel: a.Level,
				EntityCategory: nullStr(a.Category), ServiceName: nullStr(a.Service), ExposureType: a.ExposureType,
				AlertAmount: a.AlertAmountUSD.String(), CreatedAt: created.Truncate(time.Microsecond), Source: webhook.SourceMonitoring,
				Status: nullStr(&a.AlertStatus)}
			if ar.AlertAmount == "" {
				ar.AlertAmount = "0"
			}
			if a.AlertStatusCreatedAt != nil {
				if t, err := chainalysis.ParseTime(*a.AlertStatusCreatedAt); err == nil {
					ar.StatusAt = sql.NullTime{Time: t, Valid: true}
				}
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO kyt_alerts (alert_id, request_id, external_id, alert_level, entity_category,
				service_name, exposure_type, alert_amount, created_at, source, alert_status, alert_status_created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'MONITORING', $10, $11) ON CONFLICT (alert_id) DO NOTHING`,
				ar.AlertID, requestID, ar.ExternalID, ar.AlertLevel, ar.EntityCategory, ar.ServiceName, ar.ExposureType,
				ar.AlertAmount, ar.CreatedAt, ar.Status, ar.StatusAt)
			if err != nil {
				return fmt.Errorf("monitoring sync: store alert %s: %w", a.AlertIdentifier, err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				fresh = append(fresh, ar)
			}
		}
		if len(fresh) == 0 {
			return nil // stored by an earlier or a concurrent sync, which called back
		}
		if err := tx.GetContext(ctx, &r, `UPDATE kyt_results SET alert_count = COALESCE(alert_count, 0) + $2, updated_at = now()
			WHERE request_id = $1 RETURNING `+resultColumns, requestID, len(fresh)); err != nil {
			return fmt.Errorf("monitoring sync: count alerts of %s: %w", requestID, err)
		}
		s.hook(ctx, "monitored", requestID)
		s.monitorAlerts.WithLabelValues("new").Add(float64(len(fresh)))
		return s.callbacks.Enqueue(ctx, tx, callback.New{RequestID: requestID, Type: webhook.TypeKYTAlert,
			Payload: struct {
				CallbackType string                `json:"callbackType"`
				Data         webhook.KYTResultData `json:"data"`
			}{webhook.TypeKYTAlert, r.data(fresh)}})
	})
	return err
}

// monitorMetrics are the sync's counters: alerts read by outcome, runs by outcome. (Its lag is
// read from the database at scrape: MonitorLag.)
func (s *Service) monitorMetrics() []prometheus.Collector {
	s.monitorAlerts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_kyt_monitor_alerts_total",
		Help: "Alerts read by the monitoring sync, by outcome: new (stored, called back), known, status_changed, unmatched (not ours)."},
		[]string{"outcome"})
	s.monitorRuns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_kyt_monitor_runs_total",
		Help: "Monitoring sync runs by outcome (ok, chainalysis_error, error)."}, []string{"outcome"})
	return []prometheus.Collector{s.monitorAlerts, s.monitorRuns}
}

// MonitorLag is how long ago the last complete monitoring sync of any replica ended, in seconds;
// -1 before the first.
func (s *Service) MonitorLag(ctx context.Context) (float64, error) {
	var lag float64
	err := s.api.GetContext(ctx, &lag, `SELECT COALESCE((SELECT extract(epoch FROM now() - synced_at) FROM kyt_monitor), -1)`)
	return lag, err
}
