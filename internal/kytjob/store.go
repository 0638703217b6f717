package kytjob

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/webhook"
)

const resultColumns = `request_id, verification_uuid, counterparty_vasp_id, api_type, user_id, direction, network, asset,
	amount::text AS amount, usd_price::text AS usd_price, transfer_ref, output_address, "timestamp", external_id, status,
	alert_count, error_code, error_message, created_at, updated_at, assessed_at, notify`

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
// one transaction. A second run finds it terminal and changes nothing.
func (s *Service) finishProcessed(ctx context.Context, requestID string, o outcome) error {
	assessed, err := chainalysis.ParseTime(o.UpdatedAt)
	if err != nil {
		return fmt.Errorf("assessment %s: %w", requestID, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	alerts := make([]alertRow, 0, len(o.Alerts))
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		for _, a := range o.Alerts {
			ar := alertRow{AlertID: a.ExternalID, RequestID: requestID, ExternalID: o.ExternalID, AlertLevel: a.AlertLevel,
				EntityCategory: nullStr(a.Category), ServiceName: nullStr(a.Service), ExposureType: a.ExposureType,
				AlertAmount: a.AlertAmount.String(), CreatedAt: now, Source: webhook.SourceAssessment}
			if _, err := tx.ExecContext(ctx, `INSERT INTO kyt_alerts (alert_id, request_id, external_id, alert_level,
				entity_category, service_name, exposure_type, alert_amount, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
				ON CONFLICT (alert_id) DO NOTHING`, ar.AlertID, requestID, ar.ExternalID, ar.AlertLevel, ar.EntityCategory,
				ar.ServiceName, ar.ExposureType, ar.AlertAmount, now); err != nil {
				return fmt.Errorf("store alert %s: %w", a.ExternalID, err)
			}
			alerts = append(alerts, ar)
		}
		return s.endIn(ctx, tx, requestID, `status = 'PROCESSED', alert_count = $2, assessed_at = $3, usd_price = $4,
			"timestamp" = COALESCE($5, "timestamp"), external_id = $6`, alerts,
			len(o.Alerts), assessed, o.USDAmount, o.Timestamp, o.ExternalID)
	})
}

// finishError ends an assessment in ERROR with code and message, and enqueues its callback.
func (s *Service) finishError(ctx context.Context, requestID, code, message string) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		return s.endIn(ctx, tx, requestID, `status = 'ERROR', error_code = $2, error_message = $3`, nil, code, message)
	})
}

// endIn moves an open assessment to a terminal state in tx (set assigns the state and its
// details from $2 on) and enqueues its callback. It returns assessment.ErrNotOpen when an earlier run
// already ended the assessment, so the state changes once, whatever the number of runs.
func (s *Service) endIn(ctx context.Context, tx *sqlx.Tx, requestID, set string, alerts []alertRow, args ...any) error {
	var r row
	err := tx.GetContext(ctx, &r, `UPDATE kyt_results SET `+set+`, updated_at = now()
		WHERE request_id = $1 AND status IN ('PENDING', 'REGISTERED') RETURNING `+resultColumns,
		append([]any{requestID}, args...)...)
	if errors.Is(err, sql.ErrNoRows) {
		return assessment.ErrNotOpen
	}
	if err != nil {
		return fmt.Errorf("end assessment %s: %w", requestID, err)
	}
	if err := s.enqueueCallback(ctx, tx, r, alerts, true); err != nil {
		return err
	}
	if r.Notify {
		return assessment.Notify(ctx, tx, requestID)
	}
	return nil
}

// enqueueCallback freezes the assessment r (as it now stands in tx) and its alerts into a
// CHAINALYSIS_KYT_RESULT callback, with its delivery job.
func (s *Service) enqueueCallback(ctx context.Context, tx *sqlx.Tx, r row, alerts []alertRow, terminal bool) error {
	err := s.callbacks.Enqueue(ctx, tx, callback.New{RequestID: r.RequestID, Type: webhook.TypeKYTResult, Terminal: terminal,
		Payload: struct {
			CallbackType string                `json:"callbackType"`
			Data         webhook.KYTResultData `json:"data"`
		}{webhook.TypeKYTResult, r.data(alerts)}})
	if err == nil && terminal {
		s.finished.WithLabelValues(r.Status).Inc()
		s.latency.Observe(time.Since(r.CreatedAt).Seconds())
	}
	return err
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
