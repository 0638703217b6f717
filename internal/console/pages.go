package console

import (
	"encoding/csv"
	"errors"
	"net/http"
	"strconv"
	"strings"

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
		Statuses:   stageOptions(q.Get("status")),
		Directions: options(q.Get("direction"), "", "Any", kytjob.Outgoing, "Outgoing", kytjob.Incoming, "Incoming"),
		Pager:      pager("/console/assessments", q, pg, total.Total, len(list))}
	for _, a := range list {
		v.Rows = append(v.Rows, a.RiskAssessment.ChainalysisKYT)
		v.Verifications = append(v.Verifications, a.VerificationUUID)
	}
	c.render(w, r, http.StatusOK, "assessments", v)
}

// stageOptions are the stages an assessment or a screening goes through, for a status filter.
func stageOptions(selected string) []Option {
	return options(selected, "", "Any", "PENDING", "Pending", "REGISTERED", "Registered", "PROCESSED", "Processed", "ERROR", "Error")
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
	if v.Alerts, _, err = c.listAlerts(r, kytjob.AlertFilter{RequestID: v.A.RequestID, BySeverity: true, Page: sqlpage.Request{Limit: 200}}); err != nil {
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
		Statuses: stageOptions(q.Get("status")),
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
		ActionRedeliver, ActionOperatorAdded, ActionOperatorDisabled, ActionRoleChanged, ActionPasswordReset} {
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

// OperatorsView lists the operators for an admin, who adds, disables and changes the role of
// them here with the functions `enclave operator` uses, each change audited.
type OperatorsView struct {
	Frame
	Rows  []Operator
	Roles []Role
	// Created and Password are the operator just added, or just given a new password: the
	// password is shown this once, on the answer to the POST, and kept only as a hash.
	Created, Password string
	// Done says what the last change did.
	Done string
}

func (c *Console) handleOperators(w http.ResponseWriter, r *http.Request) {
	c.showOperators(w, r, http.StatusOK, OperatorsView{Done: doneMessage(r.URL.Query().Get("done"))})
}

func (c *Console) showOperators(w http.ResponseWriter, r *http.Request, status int, v OperatorsView) {
	ops, err := c.operators.List(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	problem := v.Error
	v.Frame, v.Rows, v.Roles = frame(r, "Operators", "operators"), ops, []Role{Viewer, Analyst, Admin}
	v.Error = problem
	c.render(w, r, status, "operators", v)
}

// doneMessage is what a change's redirect says it did; only these words, never the query's.
func doneMessage(done string) string {
	switch done {
	case "disabled":
		return "Disabled: they cannot log in, and their sessions end at their next request."
	case "role":
		return "Role changed: it applies from their next request."
	}
	return ""
}

// operatorChanged answers a change of an operator: back to the list, or the list with the
// reason a refused change was refused.
func (c *Console) operatorChanged(w http.ResponseWriter, r *http.Request, err error, done string) {
	var msg string
	switch {
	case err == nil:
		http.Redirect(w, r, "/console/operators?done="+done, http.StatusSeeOther)
		return
	case errors.Is(err, ErrNoOperator):
		c.fail(w, r, notFound("Operator "+r.PathValue("name")))
		return
	case errors.Is(err, ErrLastAdmin), errors.Is(err, ErrExists), errors.Is(err, errNotYourself), errors.Is(err, errOperatorInput):
		msg = err.Error()
	default:
		c.fail(w, r, err)
		return
	}
	c.showOperators(w, r, http.StatusConflict, OperatorsView{Frame: Frame{Error: msg}})
}

var (
	errNotYourself   = errors.New("you cannot disable yourself or change your own role: ask another admin")
	errOperatorInput = errors.New("name: want 1 to 63 lower-case letters, digits, '.', '_' or '-'; role: viewer, analyst or admin")
)

func (c *Console) handleAddOperator(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(strings.TrimSpace(r.PostFormValue("name")))
	role, err := ParseRole(r.PostFormValue("role"))
	if err != nil || !nameRe.MatchString(name) {
		c.operatorChanged(w, r, errOperatorInput, "")
		return
	}
	password, err := c.operators.Add(r.Context(), name, role, current(r.Context()).Name)
	if err != nil {
		c.operatorChanged(w, r, err, "")
		return
	}
	// Answered here, not redirected: the password is never at a URL, and never cached (no-store).
	c.showOperators(w, r, http.StatusOK, OperatorsView{Created: name, Password: password})
}

func (c *Console) handleResetPassword(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	password, err := c.operators.ResetPassword(r.Context(), name, current(r.Context()).Name)
	if err != nil {
		c.operatorChanged(w, r, err, "")
		return
	}
	c.showOperators(w, r, http.StatusOK, OperatorsView{Created: name, Password: password})
}

func (c *Console) handleDisableOperator(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == current(r.Context()).Name {
		c.operatorChanged(w, r, errNotYourself, "")
		return
	}
	c.operatorChanged(w, r, c.operators.Disable(r.Context(), name, current(r.Context()).Name), "disabled")
}

func (c *Console) handleSetRole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	role, err := ParseRole(r.PostFormValue("role"))
	if err != nil {
		c.operatorChanged(w, r, errOperatorInput, "")
		return
	}
	if name == current(r.Context()).Name {
		c.operatorChanged(w, r, errNotYourself, "")
		return
	}
	c.operatorChanged(w, r, c.operators.SetRole(r.Context(), name, role, current(r.Context()).Name), "role")
}
