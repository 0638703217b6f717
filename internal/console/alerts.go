package console

import (
	"encoding/csv"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/webhook"
)

// AlertRow is one alert as the queue and the alert page show it: Chainalysis's alert with the
// enclave's triage beside it.
type AlertRow struct {
	ID, Level, Category, Service, Exposure, AmountUSD, Direction string
	Counterparty, CounterpartyName, Verification, RequestID      string
	Source                                                       string
	KYTStatus                                                    string // Chainalysis's own, from monitoring
	Created                                                      time.Time
	Status                                                       Status
	Assignee                                                     string
}

// AlertFilters are the queue's filters and order, kept in the URL.
type AlertFilters struct {
	Level, Status, Source, Direction, Assignee, Verification string
	Category, Service                                        string
	// Unassigned keeps the alerts nobody took (?unassigned=1).
	Unassigned bool
	// Order is "" for the queue's order, most severe then oldest first, or "newest".
	Order string
}

// AlertsView is the alerts queue.
type AlertsView struct {
	Frame
	F                                     AlertFilters
	Levels, Statuses, Sources, Directions []Option
	Orders                                []Option
	Rows                                  []AlertRow
	Pager                                 Pager
	CSV                                   string
}

func alertFilters(q url.Values) AlertFilters {
	f := AlertFilters{Level: q.Get("level"), Status: q.Get("status"), Source: q.Get("source"), Direction: q.Get("direction"),
		Assignee: q.Get("assignee"), Verification: q.Get("verification"), Category: q.Get("category"), Service: q.Get("service"),
		Unassigned: q.Get("unassigned") != "", Order: q.Get("order")}
	if !q.Has("status") {
		f.Status = "open" // the default: alerts waiting on an analyst
	}
	return f
}

func (f AlertFilters) kyt(page sqlpage.Request) (kytjob.AlertFilter, error) {
	status := f.Status
	if status == "any" {
		status = ""
	}
	conds, err := conditions(status, f.Assignee, f.Unassigned)
	if err != nil {
		return kytjob.AlertFilter{}, badRequest(err)
	}
	if f.Order != "" && f.Order != "newest" {
		return kytjob.AlertFilter{}, badRequest(errors.New("order: want newest, or none for most severe then oldest first"))
	}
	return kytjob.AlertFilter{Level: f.Level, Source: f.Source, Direction: f.Direction, VerificationUUID: f.Verification,
		Category: f.Category, Service: f.Service, BySeverity: f.Order == "", ByID: conds, Page: page}, nil
}

// listAlerts returns a page of alerts with their triage.
func (c *Console) listAlerts(r *http.Request, f kytjob.AlertFilter) ([]AlertRow, sqlpage.Page, error) {
	items, page, err := c.d.Assessments.ListAlerts(r.Context(), f)
	if err != nil {
		return nil, page, err
	}
	ids := make([]string, len(items))
	for i, a := range items {
		ids[i] = a.AlertID
	}
	tri, err := c.triage.Get(r.Context(), ids)
	if err != nil {
		return nil, page, err
	}
	rows := make([]AlertRow, len(items))
	for i, a := range items {
		rows[i] = c.alertRow(a, tri[a.AlertID])
	}
	return rows, page, nil
}

func (c *Console) alertRow(a kytjob.AlertItem, t Triage) AlertRow {
	created, _ := time.Parse(jsontime.Layout, a.CreatedAt)
	row := AlertRow{ID: a.AlertID, Level: a.AlertLevel, Category: deref(a.EntityCategory), Service: deref(a.ServiceName),
		Exposure: a.ExposureType, AmountUSD: a.AlertAmount, Direction: a.Direction, Counterparty: a.CounterpartyVaspID,
		CounterpartyName: c.peerName(a.CounterpartyVaspID), Verification: a.VerificationUUID, RequestID: a.RequestID,
		Source: a.Source, KYTStatus: deref(a.AlertStatus), Created: created, Status: Unreviewed}
	if t.Status != "" {
		row.Status, row.Assignee = t.Status, t.Assignee.String
	}
	return row
}

func (c *Console) handleAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := alertFilters(q)
	pg, off := pageOf(q)
	kf, err := f.kyt(sqlpage.Request{Limit: PageSize, Offset: off})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	rows, total, err := c.listAlerts(r, kf)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !q.Has("status") {
		q.Set("status", "open")
	}
	statuses := options(f.Status, "open", "Open (Unreviewed, In Review)", "any", "Any")
	for _, s := range Statuses {
		statuses = append(statuses, Option{Value: string(s), Label: string(s), Selected: f.Status == string(s)})
	}
	c.render(w, r, http.StatusOK, "alerts", AlertsView{
		Frame: frame(r, "Alerts", "alerts"), F: f, Rows: rows,
		Levels:     options(f.Level, "", "Any", "SEVERE", "Severe", "HIGH", "High", "MEDIUM", "Medium", "LOW", "Low"),
		Statuses:   statuses,
		Sources:    options(f.Source, "", "Any", webhook.SourceAssessment, "Assessment", webhook.SourceMonitoring, "Monitoring"),
		Directions: options(f.Direction, "", "Any", kytjob.Outgoing, "Outgoing", kytjob.Incoming, "Incoming"),
		Orders:     options(f.Order, "", "Most severe, then oldest", "newest", "Newest first"),
		Pager:      pager("/console/alerts", q, pg, total.Total, len(rows)),
		CSV:        csvURL("/console/alerts", q),
	})
}

// csvRows is the most rows an export holds.
const csvRows = 100000

func (c *Console) handleAlertsCSV(w http.ResponseWriter, r *http.Request) {
	f := alertFilters(r.URL.Query())
	exportCSV(c, w, r, "alerts", []string{"alert_id", "created_at", "level", "triage_status", "assignee", "kyt_status", "category", "service",
		"exposure", "amount_usd", "direction", "counterparty_vasp_id", "verification_uuid", "request_id", "source"},
		func(page sqlpage.Request) ([]AlertRow, sqlpage.Page, error) {
			kf, err := f.kyt(page)
			if err != nil {
				return nil, sqlpage.Page{}, err
			}
			return c.listAlerts(r, kf)
		},
		func(a AlertRow) []string {
			return []string{a.ID, jsontime.Format(a.Created), a.Level, string(a.Status), a.Assignee, a.KYTStatus, a.Category, a.Service,
				a.Exposure, a.AmountUSD, a.Direction, a.Counterparty, a.Verification, a.RequestID, a.Source}
		})
}

// exportCSV streams a keyset-paged list as name.csv: the header, then each page of 1000 rows
// as it is read, at most csvRows. Once the first byte is out an error can only end the file
// early; it is logged.
func exportCSV[T any](c *Console, w http.ResponseWriter, r *http.Request, name string, header []string,
	list func(sqlpage.Request) ([]T, sqlpage.Page, error), row func(T) []string) {
	startCSV(w, name+".csv")
	cw := csv.NewWriter(w)
	cw.Write(header) //nolint:errcheck // csv.Writer keeps the first error
	page := sqlpage.Request{Limit: 1000}
	for n := 0; n < csvRows; n += page.Limit {
		rows, p, err := list(page)
		if err != nil {
			c.log.ErrorContext(r.Context(), "console: "+name+" export", "err", err)
			return
		}
		for _, x := range rows {
			cw.Write(row(x)) //nolint:errcheck // as above
		}
		cw.Flush()
		if page.Cursor = p.Next; p.Next == "" {
			return
		}
	}
}

// AlertView is one alert's page: the alert, its assessment and verification, its triage and
// its history.
type AlertView struct {
	Frame
	A            AlertRow
	Assessment   *webhook.ChainalysisKYT
	Verification *VerificationRow
	Next         []Status
	NeedsNote    []Status
	Notes        []Note
	History      []Entry
	AssignedToMe bool
}

func (c *Console) handleAlert(w http.ResponseWriter, r *http.Request) {
	c.showAlert(w, r, http.StatusOK, "")
}

func (c *Console) showAlert(w http.ResponseWriter, r *http.Request, status int, problem string) {
	id := r.PathValue("id")
	rows, _, err := c.listAlerts(r, kytjob.AlertFilter{AlertID: id, Page: sqlpage.Request{Limit: 1}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if len(rows) == 0 {
		c.fail(w, r, notFound("Alert "+id))
		return
	}
	a := rows[0]
	v := AlertView{Frame: frame(r, "Alert "+a.Level, "alerts"), A: a, Next: a.Status.Next()}
	v.Error = problem
	for s := range needsNote {
		v.NeedsNote = append(v.NeedsNote, s)
	}
	slices.Sort(v.NeedsNote)
	v.AssignedToMe = a.Assignee == v.Me
	if data, err := c.d.Assessments.Find(r.Context(), a.RequestID); err == nil {
		v.Assessment = &data.RiskAssessment.ChainalysisKYT
	} else {
		c.fail(w, r, err)
		return
	}
	if ver, err := c.d.Verifications.FindWithoutPayload(r.Context(), a.Verification); err == nil {
		row := c.verificationRow(ver)
		v.Verification = &row
	}
	if v.Notes, err = c.triage.Notes(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	if v.History, _, err = c.audit.List(r.Context(), AuditFilter{Subject: id, Limit: 200}); err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "alert", v)
}

// alertExists answers NOT-FOUND for an alert id kytjob does not know.
func (c *Console) alertExists(r *http.Request, id string) error {
	items, _, err := c.d.Assessments.ListAlerts(r.Context(), kytjob.AlertFilter{AlertID: id, Page: sqlpage.Request{Limit: 1}})
	if err != nil {
		return err
	}
	if len(items) == 0 {
		return notFound("Alert " + id)
	}
	return nil
}

// triaged runs a triage change on the alert and sends the browser back to it; a change the
// state machine refuses shows the alert again with the reason.
func (c *Console) triaged(w http.ResponseWriter, r *http.Request, change func(id, me, ip string) error) {
	id := r.PathValue("id")
	if err := c.alertExists(r, id); err != nil {
		c.fail(w, r, err)
		return
	}
	err := change(id, current(r.Context()).Name, clientIP(r))
	var te errTransition
	if errors.As(err, &te) {
		c.showAlert(w, r, http.StatusConflict, te.msg)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/console/alerts/"+url.PathEscape(id), http.StatusSeeOther)
}

func (c *Console) handleAssign(w http.ResponseWriter, r *http.Request) {
	c.triaged(w, r, func(id, me, ip string) error { return c.triage.Assign(r.Context(), id, me, ip) })
}

func (c *Console) handleStatus(w http.ResponseWriter, r *http.Request) {
	to := Status(r.PostFormValue("status"))
	c.triaged(w, r, func(id, me, ip string) error {
		if !slices.Contains(Statuses, to) {
			return errTransition{"no such status " + string(to)}
		}
		return c.triage.SetStatus(r.Context(), id, to, r.PostFormValue("note"), me, ip)
	})
}

func (c *Console) handleNote(w http.ResponseWriter, r *http.Request) {
	c.triaged(w, r, func(id, me, ip string) error {
		return c.triage.AddNote(r.Context(), id, r.PostFormValue("note"), me, ip)
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// startCSV sets the headers of a CSV download.
func startCSV(w http.ResponseWriter, name string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
}
