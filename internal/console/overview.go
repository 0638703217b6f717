package console

import (
	"net/http"
	"net/url"
	"time"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// Count is one number of the overview, with the list it counts.
type Count struct {
	Label string
	N     int
	// Estimated says N is the planner's estimate (more than sqlpage.ExactUpTo match).
	Estimated bool
	Link      string
	// Alarm marks a number that wants a person when it is not zero (FAILED, SEVERE).
	Alarm bool
}

// OverviewView is the small overview a person reads at a glance: open alerts by level,
// assessments and screenings of the last 24 hours by status, deliveries by status, the
// counterparties that are down and the monitoring lag. Every number is a list's total, read
// through the same services as the lists, and links to that list.
type OverviewView struct {
	Frame
	OpenAlerts, Assessments, Screenings, Callbacks, PeerMessages []Count
	Down, Counterparties                                         int
	// MonitorLag is how long ago the last monitoring sync ended; Monitored is false when none
	// ever did (monitoring off, or not yet run).
	MonitorLag time.Duration
	Monitored  bool
}

func (c *Console) handleOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	one := sqlpage.Request{Limit: 1}
	v := OverviewView{Frame: frame(r, "Overview", "overview")}
	count := func(label, link string, alarm bool, p sqlpage.Page) Count {
		return Count{Label: label, N: p.Total, Estimated: p.Estimated, Link: link, Alarm: alarm && p.Total > 0}
	}
	open, err := conditions("open", "", false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, level := range []string{"SEVERE", "HIGH", "MEDIUM", "LOW"} {
		_, p, err := c.d.Assessments.ListAlerts(ctx, kytjob.AlertFilter{Level: level, ByID: open, Page: one})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.OpenAlerts = append(v.OpenAlerts, count(level, "/console/alerts?level="+level, level == "SEVERE", p))
	}
	since := time.Now().Add(-24 * time.Hour)
	for _, st := range []string{"PENDING", "REGISTERED", "PROCESSED", "ERROR"} {
		_, p, err := c.d.Assessments.List(ctx, kytjob.Filter{Status: st, From: &since, Page: one})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.Assessments = append(v.Assessments, count(st, "/console/assessments?status="+st, st == "ERROR", p))
		_, p, err = c.d.Screenings.List(ctx, screening.Filter{Status: st, From: &since, Page: one})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.Screenings = append(v.Screenings, count(st, "/console/screenings?status="+st, st == "ERROR", p))
	}
	for _, st := range []string{"PENDING", "FAILED", "DELIVERED"} {
		_, p, err := c.d.Callbacks.List(ctx, callback.Filter{Status: st, Page: one})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.Callbacks = append(v.Callbacks, count(st, "/console/callbacks?"+url.Values{"status": {st}}.Encode(), st == "FAILED", p))
		_, p, err = c.d.Exchange.ListMessages(ctx, exchange.Filter{Status: st, Page: one})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v.PeerMessages = append(v.PeerMessages, count(st, "/console/peer-messages?"+url.Values{"status": {st}}.Encode(), st == "FAILED", p))
	}
	hs, err := c.d.Directory.Health(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v.Counterparties = len(hs)
	for _, h := range hs {
		if h.Health != exchange.HealthUp {
			v.Down++
		}
	}
	lag, err := c.d.Assessments.MonitorLag(ctx)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if lag >= 0 {
		v.Monitored, v.MonitorLag = true, time.Duration(lag*float64(time.Second)).Round(time.Second)
	}
	c.render(w, r, http.StatusOK, "overview", v)
}
