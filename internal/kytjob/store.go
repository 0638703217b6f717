package kytjob

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/webhook"
)

const resultColumns = `request_id, verification_uuid, counterparty_vasp_id, api_type, user_id, direction, network, asset,
	amount::text AS amount, usd_price::text AS usd_price, transfer_ref, output_address, "timestamp", external_id, status,
	alert_count, error_code, error_message, created_at, updated_at, assessed_at, notify`

// resultColumnsOfK is resultColumns of kyt_results as k, for the terminal UPDATE, which also
// reads a record set with some of the same column names.
var resultColumnsOfK = func() string {
	cols := strings.Split(resultColumns, ",")
	for i, c := range cols {
		cols[i] = "k." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// row is a kyt_results row.
type row struct {
	RequestID          string         `db:"request_id"`
	VerificationUUID   string         `db:"verification_uuid"`
	CounterpartyVaspID string         `db:"counterparty_vasp_id"`
	APIType            string         `db:"api_type"`
	UserID             string         `db:"user_id"`
	Direction          string         `db:"direction"`
	Network            string         `db:"network"`
	Asset              string         `db:"asset"`
	Amount             string         `db:"amount"`
	USDPrice           sql.NullString `db:"usd_price"`
	TransferRef        sql.NullString `db:"transfer_ref"`
	OutputAddress      string         `db:"output_address"`
	Timestamp          sql.NullTime   `db:"timestamp"`
	ExternalID         sql.NullString `db:"external_id"`
	Status             string         `db:"status"`
	AlertCount         sql.NullInt32  `db:"alert_count"`
	ErrorCode          sql.NullString `db:"error_code"`
	ErrorMessage       sql.NullString `db:"error_message"`
	CreatedAt          time.Time      `db:"created_at"`
	UpdatedAt          time.Time      `db:"updated_at"`
	AssessedAt         sql.NullTime   `db:"assessed_at"`
	Notify             bool           `db:"notify"` // a request waits on it (Prefer: wait)
}

// alertRow is a kyt_alerts row.
type alertRow struct {
	AlertID        string         `db:"alert_id"`
	RequestID      string         `db:"request_id"`
	ExternalID     string         `db:"external_id"`
	AlertLevel     string         `db:"alert_level"`
	EntityCategory sql.NullString `db:"entity_category"`
	ServiceName    sql.NullString `db:"service_name"`
	ExposureType   string         `db:"exposure_type"`
	AlertAmount    string         `db:"alert_amount"`
	CreatedAt      time.Time      `db:"created_at"`
	Source         string         `db:"source"`
	Status         sql.NullString `db:"alert_status"`
	StatusAt       sql.NullTime   `db:"alert_status_created_at"`
}

// alertColumns are those of alertRow.
const alertColumns = `alert_id, request_id, external_id, alert_level, entity_category, service_name, exposure_type,
	alert_amount::text AS alert_amount, created_at, source, alert_status, alert_status_created_at`

// view is the alert as callbacks and the API show it, r being its assessment.
func (a alertRow) view(r row) webhook.KYTAlert {
	return webhook.KYTAlert{
		CounterpartyVaspID: r.CounterpartyVaspID, ExternalID: a.ExternalID, Direction: r.Direction, AlertID: a.AlertID,
		AlertLevel: a.AlertLevel, EntityCategory: assessment.Ptr(a.EntityCategory), ServiceName: assessment.Ptr(a.ServiceName),
		ExposureType: a.ExposureType, AlertAmount: a.AlertAmount, CreatedAt: jsontime.Format(a.CreatedAt),
		Source: a.Source, AlertStatus: assessment.Ptr(a.Status), AlertStatusCreatedAt: jsontime.FormatNull(a.StatusAt),
	}
}

func loadAlerts(ctx context.Context, q sqlx.QueryerContext, requestIDs []string) (map[string][]alertRow, error) {
	out := map[string][]alertRow{}
	if len(requestIDs) == 0 {
		return out, nil
	}
	var rows []alertRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT `+alertColumns+`
		FROM kyt_alerts WHERE request_id = ANY($1) ORDER BY created_at, alert_id`, requestIDs); err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	for _, a := range rows {
		out[a.RequestID] = append(out[a.RequestID], a)
	}
	return out, nil
}

// data is the assessment in the shape of the VerifyVASP callback.
func (r row) data(alerts []alertRow) webhook.KYTResultData {
	k := webhook.ChainalysisKYT{
		RequestID: r.RequestID, CounterpartyVaspID: r.CounterpartyVaspID, APIType: r.APIType, UserID: r.UserID,
		Direction: r.Direction, Network: r.Network, Asset: r.Asset, Amount: r.Amount, USDPrice: assessment.Ptr(r.USDPrice),
		OutputAddress: r.OutputAddress, Timestamp: jsontime.FormatNull(r.Timestamp), ExternalID: assessment.Ptr(r.ExternalID), Status: r.Status,
		CreatedAt: jsontime.Format(r.CreatedAt), AssessedAt: jsontime.FormatNull(r.AssessedAt),
	}
	if r.APIType == APITypeTransfer {
		k.TransferRef = assessment.Ptr(r.TransferRef)
	}
	if r.Status == webhook.StatusProcessed && r.AlertCount.Valid {
		n := int(r.AlertCount.Int32)
		k.AlertCount = &n
	}
	if r.Status == webhook.StatusError {
		k.Error = &webhook.KYTError{Code: r.ErrorCode.String, Message: r.ErrorMessage.String}
	}
	list := make([]webhook.KYTAlert, 0, len(alerts))
	for _, a := range alerts {
		list = append(list, a.view(r))
	}
	return webhook.KYTResultData{VerificationUUID: r.VerificationUUID,
		RiskAssessment: webhook.RiskAssessment{ChainalysisKYT: k, ChainalysisKYTAlerts: list}}
}

// outcome is what Chainalysis said of a processed assessment.
type outcome struct {
	USDAmount  *string
	UpdatedAt  string
	Timestamp  *time.Time // TRANSFER: when the transfer happened on chain
	ExternalID string
	Alerts     []chainalysis.Alert
}

// finishProcessed stores a processed assessment and its alerts, and enqueues its callback, in
// one transaction. A second run finds it terminal and changes nothing (assessment.ErrNotOpen).
func (s *Service) finishProcessed(ctx context.Context, requestID string, o outcome) error {
	assessed, err := chainalysis.ParseTime(o.UpdatedAt)
	if err != nil {
		return fmt.Errorf("assessment %s: %w", requestID, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	alerts := make([]alertRow, 0, len(o.Alerts))
	for _, a := range o.Alerts {
		alerts = append(alerts, alertRow{AlertID: a.ExternalID, RequestID: requestID, ExternalID: o.ExternalID, AlertLevel: a.AlertLevel,
			EntityCategory: nullStr(a.Category), ServiceName: nullStr(a.Service), ExposureType: a.ExposureType,
			AlertAmount: a.AlertAmount.String(), CreatedAt: now, Source: webhook.SourceAssessment})
	}
	n := len(o.Alerts)
	return s.end(ctx, terminal{RequestID: requestID, Status: webhook.StatusProcessed, AlertCount: &n, AssessedAt: &assessed,
		USDPrice: o.USDAmount, Timestamp: o.Timestamp, ExternalID: &o.ExternalID, alerts: alerts})
}

// finishError ends an assessment in ERROR with code and message, and enqueues its callback.
func (s *Service) finishError(ctx context.Context, requestID, code, message string) error {
	return s.end(ctx, terminal{RequestID: requestID, Status: webhook.StatusError, ErrorCode: &code, ErrorMessage: &message})
}

// terminal is one assessment's move to PROCESSED or ERROR, a row of endColumns.
type terminal struct {
	RequestID    string     `json:"request_id"`
	Status       string     `json:"status"`
	AlertCount   *int       `json:"alert_count"`
	AssessedAt   *time.Time `json:"assessed_at"`
	USDPrice     *string    `json:"usd_price"` // decimal text, read as numeric without loss
	Timestamp    *time.Time `json:"timestamp"` // a TRANSFER's time on chain; null keeps the stored one
	ExternalID   *string    `json:"external_id"`
	ErrorCode    *string    `json:"error_code"`
	ErrorMessage *string    `json:"error_message"`
	alerts       []alertRow
}

const endColumns = `request_id uuid, status text, alert_count int, assessed_at timestamptz, usd_price numeric,
	"timestamp" timestamptz, external_id text, error_code text, error_message text`

// end moves an open assessment to its terminal state with its alerts and its callback, in a
// transaction it shares with the terminal moves of the runs that end at the same time (group
// commit: one UPDATE, one INSERT of alerts, one of callbacks and one commit for all of them;
// internal/batch, no timer). It returns assessment.ErrNotOpen when an earlier run already ended
// the assessment, so the state changes once, whatever the number of runs. A batch the database
// refuses is tried again one assessment at a time, so a bad row fails only its own run.
func (s *Service) end(ctx context.Context, t terminal) error {
	err, ferr := s.terminals.Do(ctx, t)
	if ferr != nil {
		return ferr
	}
	return err
}

// flushEnds is end's batch: in one transaction, or one at a time if that fails.
func (s *Service) flushEnds(ctx context.Context, ts []terminal) ([]error, error) {
	return batch.Alone(ts, func(ts []terminal, out []error) error {
		return s.inTx(ctx, func(tx *sqlx.Tx) error { return s.endAll(ctx, tx, ts, out) })
	}, func(err error) error { return err }), nil
}

// endAll makes the terminal moves of ts in tx; out[i] is ErrNotOpen for one already ended.
func (s *Service) endAll(ctx context.Context, tx *sqlx.Tx, ts []terminal, out []error) error {
	body, err := json.Marshal(ts)
	if err != nil {
		return err
	}
	var rows []row
	if err := tx.SelectContext(ctx, &rows, `UPDATE kyt_results k SET status = r.status, alert_count = r.alert_count,
		assessed_at = r.assessed_at, usd_price = r.usd_price, "timestamp" = COALESCE(r."timestamp", k."timestamp"),
		external_id = COALESCE(r.external_id, k.external_id), error_code = r.error_code, error_message = r.error_message,
		updated_at = now()
		FROM jsonb_to_recordset($1::jsonb) AS r(`+endColumns+`)
		WHERE k.request_id = r.request_id AND k.status IN ('PENDING', 'REGISTERED')
		RETURNING `+resultColumnsOfK, string(body)); err != nil {
		return fmt.Errorf("end assessments: %w", err)
	}
	ended := make(map[string]row, len(rows))
	for _, r := range rows {
		ended[strings.ToLower(r.RequestID)] = r
	}
	var alerts []alertRow
	var callbacks []callback.New
	var notify []string
	for i, t := range ts {
		r, ok := ended[strings.ToLower(t.RequestID)]
		if !ok {
			out[i] = assessment.ErrNotOpen
			continue
		}
		delete(ended, strings.ToLower(t.RequestID)) // the same assessment twice in a batch: the first ends it
		out[i] = nil
		alerts = append(alerts, t.alerts...)
		callbacks = append(callbacks, s.resultCallback(r, t.alerts, true))
		if r.Notify {
			notify = append(notify, r.RequestID)
		}
	}
	if len(alerts) > 0 {
		type alertJSON struct {
			AlertID        string    `json:"alert_id"`
			RequestID      string    `json:"request_id"`
			ExternalID     string    `json:"external_id"`
			AlertLevel     string    `json:"alert_level"`
			EntityCategory *string   `json:"entity_category"`
			ServiceName    *string   `json:"service_name"`
			ExposureType   string    `json:"exposure_type"`
			AlertAmount    string    `json:"alert_amount"` // decimal text, read as numeric without loss
			CreatedAt      time.Time `json:"created_at"`
		}
		rows := make([]alertJSON, len(alerts))
		for i, x := range alerts {
			rows[i] = alertJSON{AlertID: x.AlertID, RequestID: x.RequestID, ExternalID: x.ExternalID, AlertLevel: x.AlertLevel,
				EntityCategory: assessment.Ptr(x.EntityCategory), ServiceName: assessment.Ptr(x.ServiceName),
				ExposureType: x.ExposureType, AlertAmount: x.AlertAmount, CreatedAt: x.CreatedAt}
		}
		a, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO kyt_alerts (alert_id, request_id, external_id, alert_level, entity_category,
			service_name, exposure_type, alert_amount, created_at)
			SELECT alert_id, request_id, external_id, alert_level, entity_category, service_name, exposure_type, alert_amount, created_at
			FROM jsonb_to_recordset($1::jsonb) AS r(alert_id text, request_id uuid, external_id text, alert_level text,
				entity_category text, service_name text, exposure_type text, alert_amount numeric, created_at timestamptz)
			ON CONFLICT (alert_id) DO NOTHING`, string(a)); err != nil {
			return fmt.Errorf("store alerts: %w", err)
		}
	}
	if err := s.callbacks.EnqueueMany(ctx, tx, callbacks); err != nil {
		return err
	}
	if err := assessment.Notify(ctx, tx, notify...); err != nil {
		return err
	}
	for _, r := range rows {
		s.finished.WithLabelValues(r.Status).Inc()
		s.latency.Observe(time.Since(r.CreatedAt).Seconds())
	}
	return nil
}

// enqueueCallback freezes the assessment r (as it now stands in tx) into a REGISTERED
// CHAINALYSIS_KYT_RESULT callback.
func (s *Service) enqueueCallback(ctx context.Context, tx *sqlx.Tx, r row, alerts []alertRow, terminal bool) error {
	return s.callbacks.Enqueue(ctx, tx, s.resultCallback(r, alerts, terminal))
}

// resultCallback freezes the assessment r and its alerts into a CHAINALYSIS_KYT_RESULT
// callback.
func (s *Service) resultCallback(r row, alerts []alertRow, terminal bool) callback.New {
	return callback.New{RequestID: r.RequestID, Type: webhook.TypeKYTResult, Terminal: terminal,
		Payload: struct {
			CallbackType string                `json:"callbackType"`
			Data         webhook.KYTResultData `json:"data"`
		}{webhook.TypeKYTResult, r.data(alerts)}}
}

func nullStr(s *string) sql.NullString {
	if s == nil {
		return sql.NullString{}
	}
	return sql.NullString{String: *s, Valid: true}
}

func (s *Service) inTx(ctx context.Context, f func(*sqlx.Tx) error) error {
	return assessment.InTx(ctx, s.work, f)
}
