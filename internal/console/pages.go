package console

import (
	"encoding/csv"
	"net/http"
	"strconv"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/webhook"
)

// AssessmentsView is the list of KYT assessments.
type AssessmentsView struct {
	Frame
	Status, Direction    string
	Statuses, Directions []Option
	Rows                 []webhook.ChainalysisKYT
	Verifications        []string
	Pager                Pager
}

func (c *Console) handleAssessments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, off := pageOf(q)
	list, total, err := c.d.Assessments.List(r.Context(), kytjob.Filter{Status: q.Get("status"), Direction: q.Get("direction"), Page: sqlpage.Request{Limit: PageSize, Offset: off}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := AssessmentsView{Frame: frame(r, "KYT assessments", "assessments"), Status: q.Get("status"), Direction: q.Get("direction"),
		Statuses:   options(q.Get("status"), "", "Any", "PENDING", "Pending", "REGISTERED", "Registered", "PROCESSED", "Processed", "ERROR", "Error"),
		Directions: options(q.Get("direction"), "", "Any", kytjob.Outgoing, "Outgoing", kytjob.Incoming, "Incoming"),
		Pager:      pager("/console/assessments", q, pg, total.Total, len(list))}
	for _, a := range list {
		v.Rows = append(v.Rows, a.RiskAssessment.ChainalysisKYT)
		v.Verifications = append(v.Verifications, a.VerificationUUID)
	}
	c.render(w, r, http.StatusOK, "assessments", v)
}

// AssessmentView is one KYT assessment with its alerts and callbacks.
type AssessmentView struct {
	Frame
	VerificationUUID string
	A                webhook.ChainalysisKYT
	Alerts           []AlertRow
	Callbacks        []DeliveryRow
}

func (c *Console) handleAssessment(w http.ResponseWriter, r *http.Request) {
	data, err := c.d.Assessments.Find(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := AssessmentView{Frame: frame(r, "KYT assessment", "assessments"), VerificationUUID: data.VerificationUUID, A: data.RiskAssessment.ChainalysisKYT}
	if v.Alerts, _, err = c.listAlerts(r, kytjob.AlertFilter{RequestID: v.A.RequestID, Page: sqlpage.Request{Limit: 200}}); err != nil {
		c.fail(w, r, err)
		return
	}
	cbs, _, err := c.d.Callbacks.List(r.Context(), callback.Filter{RequestID: v.A.RequestID, Page: sqlpage.Request{Limit: 100}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, cb := range cbs {
		v.Callbacks = append(v.Callbacks, callbackRow(cb))
	}
	c.render(w, r, http.StatusOK, "assessment", v)
}

// ScreeningsView is the list of address screenings.
type ScreeningsView struct {
	Frame
	Status, Risk    string
	Statuses, Risks []Option
	Rows            []webhook.AddressScreening
	Verifications   []string
	Pager           Pager
}

func (c *Console) handleScreenings(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, off := pageOf(q)
	list, total, err := c.d.Screenings.List(r.Context(), screening.Filter{Status: q.Get("status"), Risk: q.Get("risk"), Page: sqlpage.Request{Limit: PageSize, Offset: off}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := ScreeningsView{Frame: frame(r, "Address screenings", "screenings"), Status: q.Get("status"), Risk: q.Get("risk"),
		Statuses: options(q.Get("status"), "", "Any", "PENDING", "Pending", "REGISTERED", "Registered", "PROCESSED", "Processed", "ERROR", "Error"),
		Risks:    options(q.Get("risk"), "", "Any", "Severe", "Severe", "High", "High", "Medium", "Medium", "Low", "Low"),
		Pager:    pager("/console/screenings", q, pg, total.Total, len(list))}
	for _, s := range list {
		v.Rows = append(v.Rows, s.RiskAssessment.ChainalysisAddressScreening)
		v.Verifications = append(v.Verifications, s.VerificationUUID)
	}
	c.render(w, r, http.StatusOK, "screenings", v)
}

// CounterpartiesView is the peers file with each counterparty's health, read through the
// same function as GET /v1/vasps (exchange.Directory.Health), never a secret.
type CounterpartiesView struct {
	Frame
	Rows []exchange.Health
}

func (c *Console) handleCounterparties(w http.ResponseWriter, r *http.Request) {
	rows, err := c.d.Directory.Health(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "counterparties", CounterpartiesView{Frame: frame(r, "Counterparties", "counterparties"), Rows: rows})
}

// AuditView is the audit log.
type AuditView struct {
	Frame
	Operator, Action, Subject string
	Actions                   []Option
	Rows                      []Entry
	Pager                     Pager
	CSV                       string
}

func auditFilter(r *http.Request) AuditFilter {
	q := r.URL.Query()
	return AuditFilter{Operator: q.Get("operator"), Action: q.Get("action"), Subject: q.Get("subject")}
}

func (c *Console) handleAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, off := pageOf(q)
	f := auditFilter(r)
	f.Limit, f.Offset = PageSize, off
	rows, total, err := c.audit.List(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	actions := []string{"", "Any"}
	for _, a := range []string{ActionLogin, ActionLoginFailed, ActionLogout, ActionReveal, ActionAssign, ActionStatus, ActionNote,
		ActionRedeliver, ActionOperatorAdded, ActionOperatorDisabled, ActionPasswordReset} {
		actions = append(actions, a, a)
	}
	c.render(w, r, http.StatusOK, "audit", AuditView{Frame: frame(r, "Audit log", "audit"), Operator: f.Operator, Action: f.Action,
		Subject: f.Subject, Actions: options(f.Action, actions...), Rows: rows, Pager: pager("/console/audit", q, pg, total, len(rows)),
		CSV: csvURL("/console/audit", q)})
}

func (c *Console) handleAuditCSV(w http.ResponseWriter, r *http.Request) {
	f := auditFilter(r)
	startCSV(w, "audit.csv")
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "at", "operator", "action", "subject", "detail", "ip"}) //nolint:errcheck // csv.Writer keeps the first error
	for off := 0; off < csvRows; off += 1000 {
		f.Limit, f.Offset = 1000, off
		rows, _, err := c.audit.List(r.Context(), f)
		if err != nil {
			c.log.ErrorContext(r.Context(), "console: audit export", "err", err)
			return
		}
		for _, e := range rows {
			cw.Write([]string{strconv.FormatInt(e.ID, 10), jsontime.Format(e.At), e.Operator, e.Action, e.Subject, e.Detail, e.IP}) //nolint:errcheck // as above
		}
		cw.Flush()
		if len(rows) < 1000 {
			return
		}
	}
}

// OperatorsView lists the operators (admins only); they are added and disabled with
// `enclave operator`.
type OperatorsView struct {
	Frame
	Rows []Operator
}

func (c *Console) handleOperators(w http.ResponseWriter, r *http.Request) {
	ops, err := c.operators.List(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "operators", OperatorsView{Frame: frame(r, "Operators", "operators"), Rows: ops})
}
