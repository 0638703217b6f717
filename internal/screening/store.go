package screening

import (
	"context"
	"database/sql"
	"encoding/json"
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

const columns = `request_id, verification_uuid, counterparty_vasp_id, address, status, risk, risk_reason, cluster_name,
	cluster_category, address_type, address_identifications, exposures, triggers, pool_metadata, error_code, error_message,
	created_at, assessed_at, notify`

// row is a screening_results row.
type row struct {
	RequestID              string         `db:"request_id"`
	VerificationUUID       string         `db:"verification_uuid"`
	CounterpartyVaspID     string         `db:"counterparty_vasp_id"`
	Address                string         `db:"address"`
	Status                 string         `db:"status"`
	Risk                   sql.NullString `db:"risk"`
	RiskReason             sql.NullString `db:"risk_reason"`
	ClusterName            sql.NullString `db:"cluster_name"`
	ClusterCategory        sql.NullString `db:"cluster_category"`
	AddressType            sql.NullString `db:"address_type"`
	AddressIdentifications []byte         `db:"address_identifications"`
	Exposures              []byte         `db:"exposures"`
	Triggers               []byte         `db:"triggers"`
	PoolMetadata           []byte         `db:"pool_metadata"`
	ErrorCode              sql.NullString `db:"error_code"`
	ErrorMessage           sql.NullString `db:"error_message"`
	CreatedAt              time.Time      `db:"created_at"`
	AssessedAt             sql.NullTime   `db:"assessed_at"`
	Notify                 bool           `db:"notify"` // a request waits on it (Prefer: wait)
}

// data is the screening in the shape of its callback.
func (r row) data() webhook.ScreeningResultData {
	a := webhook.AddressScreening{RequestID: r.RequestID, CounterpartyVaspID: r.CounterpartyVaspID, Address: r.Address,
		Status: r.Status, Risk: assessment.Ptr(r.Risk), RiskReason: assessment.Ptr(r.RiskReason), AddressType: assessment.Ptr(r.AddressType),
		Cluster: raw(nil), AddressIdentifications: raw(r.AddressIdentifications), Exposures: raw(r.Exposures),
		Triggers: raw(r.Triggers), CreatedAt: jsontime.Format(r.CreatedAt)}
	if r.ClusterName.Valid || r.ClusterCategory.Valid {
		a.Cluster, _ = json.Marshal(struct {
			Name     string `json:"name"`
			Category string `json:"category"`
		}{r.ClusterName.String, r.ClusterCategory.String})
	}
	if len(r.PoolMetadata) > 0 {
		a.PoolMetadata = r.PoolMetadata
	}
	a.AssessedAt = jsontime.FormatNull(r.AssessedAt)
	if r.Status == assessment.StatusError {
		a.Error = &webhook.KYTError{Code: r.ErrorCode.String, Message: r.ErrorMessage.String}
	}
	return webhook.ScreeningResultData{VerificationUUID: r.VerificationUUID,
		RiskAssessment: webhook.ScreeningRiskAssessment{ChainalysisAddressScreening: a}}
}

// raw is a stored jsonb value, or JSON null.
func raw(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// jsonb encodes v for a jsonb column; a nil list or object is NULL.
func jsonb(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "null" {
		return nil, err
	}
	return string(b), nil
}

// finishProcessed stores Chainalysis's assessment of the address and enqueues the callback,
// in one transaction. A second run finds the screening terminal and changes nothing.
func (s *Service) finishProcessed(ctx context.Context, a Args, e chainalysis.Entity) error {
	var ids, exposures, triggers, pool any
	var err error
	for _, f := range []struct {
		dst *any
		v   any
	}{{&ids, e.AddressIdentifications}, {&exposures, e.Exposures}, {&triggers, e.Triggers}, {&pool, e.PoolMetadata}} {
		if *f.dst, err = jsonb(f.v); err != nil {
			return fmt.Errorf("screening %s: %w", a.RequestID, err)
		}
	}
	var clusterName, clusterCategory *string
	if e.Cluster != nil {
		clusterName, clusterCategory = &e.Cluster.Name, &e.Cluster.Category
	}
	return s.end(ctx, a, `status = 'PROCESSED', risk = $2, risk_reason = $3, cluster_name = $4, cluster_category = $5,
		address_type = $6, address_identifications = $7, exposures = $8, triggers = $9, pool_metadata = $10, assessed_at = now()`,
		e.Risk, e.RiskReason, clusterName, clusterCategory, e.AddressType, ids, exposures, triggers, pool)
}

// finishError ends a screening in ERROR with code and message, and enqueues its callback.
func (s *Service) finishError(ctx context.Context, a Args, code, message string) error {
	return s.end(ctx, a, `status = 'ERROR', error_code = $2, error_message = $3`, code, message)
}

// end moves an open screening to a terminal state (set assigns it from $2 on) and enqueues
// its one terminal callback, in one transaction; assessment.ErrNotOpen when an earlier run
// already ended it.
func (s *Service) end(ctx context.Context, a Args, set string, args ...any) error {
	var r row
	err := assessment.InTx(ctx, s.work, func(tx *sqlx.Tx) error {
		err := tx.GetContext(ctx, &r, `UPDATE screening_results SET `+set+`, updated_at = now()
			WHERE request_id = $1 AND status IN ('PENDING', 'REGISTERED') RETURNING `+columns, append([]any{a.RequestID}, args...)...)
		if errors.Is(err, sql.ErrNoRows) {
			return assessment.ErrNotOpen
		}
		if err != nil {
			return fmt.Errorf("end screening %s: %w", a.RequestID, err)
		}
		if err := s.callbacks.Enqueue(ctx, tx, callback.New{RequestID: r.RequestID, Type: webhook.TypeAddressScreeningResult, Terminal: true,
			Payload: struct {
				CallbackType string                      `json:"callbackType"`
				Data         webhook.ScreeningResultData `json:"data"`
			}{webhook.TypeAddressScreeningResult, r.data()}}); err != nil {
			return err
		}
		if r.Notify {
			return assessment.Notify(ctx, tx, r.RequestID)
		}
		return nil
	})
	if err == nil {
		s.finished.WithLabelValues(r.Status, r.Risk.String).Inc()
		s.latency.Observe(time.Since(r.CreatedAt).Seconds())
	}
	return err
}

// markRegistered records that Chainalysis has the address but has not answered its risk yet
// (a legacy PENDING), or — registered false — that the registration was lost ("Entity not
// found") and must be made again.
func (s *Service) markRegistered(ctx context.Context, id string, registered bool) error {
	from, to := "PENDING", "REGISTERED"
	if !registered {
		from, to = to, from
	}
	if _, err := s.work.ExecContext(ctx, `UPDATE screening_results SET status = $2, updated_at = now()
		WHERE request_id = $1 AND status = $3`, id, to, from); err != nil {
		return fmt.Errorf("mark screening %s %s: %w", id, to, err)
	}
	return nil
}
