package kytjob

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/webhook"
)

// AlertItem is one stored alert as GET /v1/risk-assessment/chainalysis-kyt/alerts lists it: the
// alert as callbacks carry it, with the assessment and verification it belongs to.
type AlertItem struct {
	RequestID        string `json:"requestId"`
	VerificationUUID string `json:"verificationUuid"`
	webhook.KYTAlert
}

// alertItemColumns are an alert's columns (alertColumns, of kyt_alerts a) and its assessment's
// that an AlertItem shows (of kyt_results k).
var alertItemColumns = func() string {
	var cols []string
	for _, c := range strings.Split(alertColumns, ",") {
		cols = append(cols, "a."+strings.TrimSpace(c))
	}
	return strings.Join(append(cols, "k.verification_uuid", "k.counterparty_vasp_id", "k.direction"), ", ")
}()

// AlertFilter selects alerts for ListAlerts; zero values select everything.
type AlertFilter struct {
	Level, Source, AlertStatus  string
	RequestID, VerificationUUID string
	// AlertID selects one alert: the console's alert page.
	AlertID string
	// Direction is OUTGOING or INCOMING, the assessment's.
	Direction string
	// Category selects the alerts of one entity category, in any case ("sanctioned entity");
	// Service those whose service name contains it, in any case.
	Category, Service string
	// BySeverity orders the alerts most severe first, then oldest first: a work queue (the
	// console's), rather than the API's newest first.
	BySeverity bool
	From, To   *time.Time
	Page       sqlpage.Request
	// ByID narrows the alerts by their id with conditions another package writes over a table
	// of its own: the console keeps its triage state apart from kyt_alerts, and filters its
	// queue by it without this package knowing that table.
	ByID []IDCondition
}

// IDCondition is a condition on an alert's id: SQL follows "a.alert_id " and holds one %d,
// the placeholder of Arg — such as "IN (SELECT alert_id FROM t WHERE status = ANY($%d))".
type IDCondition struct {
	SQL string
	Arg any
}

// alertList is GET /v1/risk-assessment/chainalysis-kyt/alerts: newest first, each filter served
// by an index (db/schema/00008_list_indexes.sql).
var alertList = sqlpage.List{Name: "chainalysis-kyt/alerts", From: "kyt_alerts a JOIN kyt_results k ON k.request_id = a.request_id",
	Columns: alertItemColumns, Time: "a.created_at", ID: "a.alert_id"}

// severityRank ranks an alert's level, SEVERE first: the expression of the index
// kyt_alerts_severity_idx (db/schema/00011_console_queue.sql), which must stay the same text.
const severityRank = `CASE alert_level WHEN 'SEVERE' THEN 0 WHEN 'HIGH' THEN 1 WHEN 'MEDIUM' THEN 2 WHEN 'LOW' THEN 3 ELSE 4 END`

// severityList is alertList in the order of a work queue: most severe, then oldest, first.
var severityList = func() sqlpage.List {
	l := alertList
	rank := strings.Replace(severityRank, "alert_level", "a.alert_level", 1)
	l.Name, l.Rank, l.Columns = "chainalysis-kyt/alerts by severity", rank, alertList.Columns+", "+rank+" AS level_rank"
	return l
}()

// alertItemRow is a row of alertList.
type alertItemRow struct {
	Rank int `db:"level_rank"` // severityList's only
	alertRow
	VerificationUUID   string `db:"verification_uuid"`
	CounterpartyVaspID string `db:"counterparty_vasp_id"`
	Direction          string `db:"direction"`
}

// ListAlerts returns one page of stored alerts across assessments, newest first, and how many
// match in all.
func (s *Service) ListAlerts(ctx context.Context, f AlertFilter) ([]AlertItem, sqlpage.Page, error) {
	var none sqlpage.Page
	var w sqlpage.Where
	if f.Level != "" {
		if err := apperr.OneOf("level", f.Level, "SEVERE", "HIGH", "MEDIUM", "LOW"); err != nil {
			return nil, none, err
		}
		w.Add("a.alert_level = $%d", strings.ToUpper(f.Level))
	}
	if f.Source != "" {
		if err := apperr.OneOf("source", f.Source, webhook.SourceAssessment, webhook.SourceMonitoring); err != nil {
			return nil, none, err
		}
		w.Add("a.source = $%d", strings.ToUpper(f.Source))
	}
	if f.AlertStatus != "" {
		if err := apperr.OneOf("alertStatus", f.AlertStatus, "Unreviewed", "In Review", "Flagged", "Dismissed"); err != nil {
			return nil, none, err
		}
		w.Add("lower(a.alert_status) = lower($%d)", f.AlertStatus)
	}
	for _, c := range []struct{ name, col, v string }{{"requestId", "a.request_id", f.RequestID}, {"verificationUuid", "k.verification_uuid", f.VerificationUUID}} {
		if c.v != "" {
			id, err := ids.UUID(c.name, c.v)
			if err != nil {
				return nil, none, err
			}
			w.Add(c.col+" = $%d", id)
		}
	}
	if f.AlertID != "" {
		w.Add("a.alert_id = $%d", f.AlertID)
	}
	if f.Direction != "" {
		if err := apperr.OneOf("direction", f.Direction, Outgoing, Incoming); err != nil {
			return nil, none, err
		}
		w.Add("k.direction = $%d", strings.ToUpper(f.Direction))
	}
	if f.Category != "" {
		w.Add("lower(a.entity_category) = lower($%d)", strings.TrimSpace(f.Category))
	}
	if f.Service != "" {
		w.Add(`a.service_name ILIKE '%%' || $%d || '%%'`, likeEscaper.Replace(strings.TrimSpace(f.Service)))
	}
	for _, c := range f.ByID {
		w.Add("a.alert_id "+c.SQL, c.Arg)
	}
	if f.From != nil {
		w.Add("a.created_at >= $%d", *f.From)
	}
	if f.To != nil {
		w.Add("a.created_at <= $%d", *f.To)
	}
	l := alertList
	if f.BySeverity {
		l = severityList
	}
	if f.VerificationUUID == "" && f.Direction == "" {
		l.CountFrom = "kyt_alerts a" // every alert has its assessment (foreign key)
	}
	rows, p, err := sqlpage.Select(ctx, s.api, l, w, f.Page, func(r alertItemRow) sqlpage.Key {
		return sqlpage.Key{Rank: r.Rank, Time: r.CreatedAt, ID: r.AlertID}
	})
	if err != nil {
		return nil, p, err
	}
	out := make([]AlertItem, len(rows))
	for i, r := range rows {
		out[i] = AlertItem{RequestID: r.RequestID, VerificationUUID: r.VerificationUUID,
			KYTAlert: r.view(row{CounterpartyVaspID: r.CounterpartyVaspID, Direction: r.Direction})}
	}
	return out, p, nil
}

// likeEscaper makes text match itself in a LIKE pattern (backslash is LIKE's escape).
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// CounterpartyRisk is the counterparty VASP's KYT user, as Chainalysis answers it: the
// counterparty's VASP id is the userId every assessment registers under.
type CounterpartyRisk struct {
	CounterpartyVaspID string `json:"counterpartyVaspId"`
	chainalysis.User
}

// Counterparty reads the counterparty's KYT user (GET /v1/users/{userId}): its riskScore, the
// highest level of its alerts not dismissed, and its exposure. NOT-FOUND when KYT has no such
// user; SERVICE-UNAVAILABLE when Chainalysis does not answer.
func (s *Service) Counterparty(ctx context.Context, vaspID string) (CounterpartyRisk, error) {
	// It becomes a path segment of the KYT URL: "..", "/" or "?" must not move the call.
	if !validate.VASPID(vaspID) {
		return CounterpartyRisk{}, &apperr.Error{Code: apperr.BadRequest, Message: "vaspId: must be " + validate.VASPIDRule + ", got " + validate.Quote(vaspID),
			Problems: []apperr.Problem{{Field: "vaspId", Rule: "vaspid"}}}
	}
	if s.kyt == nil {
		return CounterpartyRisk{}, apperr.New(apperr.UnsupportedRiskAssessment, "Chainalysis KYT is not configured: the enclave has no CHAINALYSIS_KYT_API_KEY")
	}
	u, err := s.kyt.User(ctx, vaspID)
	var ce *chainalysis.Error
	switch {
	case errors.As(err, &ce) && ce.StatusCode == 404:
		return CounterpartyRisk{}, apperr.New(apperr.NotFound, "Chainalysis KYT has no user %s: no transfer with this counterparty was registered", vaspID)
	case errors.As(err, &ce) && ce.Transient:
		return CounterpartyRisk{}, apperr.New(apperr.Unavailable, "Chainalysis KYT did not answer: %s", ce.Message)
	case errors.As(err, &ce):
		return CounterpartyRisk{}, apperr.New(apperr.Unavailable, "Chainalysis KYT refused the request (%d): %s", ce.StatusCode, ce.Message)
	case err != nil:
		return CounterpartyRisk{}, fmt.Errorf("counterparty %s: %w", vaspID, err)
	}
	return CounterpartyRisk{CounterpartyVaspID: vaspID, User: u}, nil
}
