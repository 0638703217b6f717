package console

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// DeliveryRow is a callback or a message to a counterparty as the deliveries pages show it.
type DeliveryRow struct {
	ID, Kind, Status, Subject, SubjectLink, Counterparty string
	Attempts                                             int
	Last                                                 string // the last status code or error
	Created                                              time.Time
	Delivered, NextAttempt                               *time.Time
}

func last(code *int, msg *string) string {
	switch {
	case msg != nil && *msg != "" && code != nil:
		return fmt.Sprintf("%d: %s", *code, *msg)
	case msg != nil && *msg != "":
		return *msg
	case code != nil:
		return strconv.Itoa(*code)
	}
	return ""
}

func callbackRow(cb callback.Record) DeliveryRow {
	d := DeliveryRow{ID: cb.ID, Kind: cb.CallbackType, Status: cb.Status, Attempts: cb.Attempts, Last: last(cb.LastStatusCode, cb.LastError), Created: cb.Created}
	if cb.Delivered.Valid {
		d.Delivered = &cb.Delivered.Time
	}
	switch {
	case cb.VerificationUUID != nil:
		d.Subject, d.SubjectLink = *cb.VerificationUUID, "/console/verifications/"+*cb.VerificationUUID
	case cb.RequestID != nil:
		d.Subject, d.SubjectLink = *cb.RequestID, "/console/assessments/"+*cb.RequestID
	}
	return d
}

// DeliveriesView is the list of callbacks or of peer messages.
type DeliveriesView struct {
	Frame
	What, Base      string
	Status          string
	Statuses        []Option
	Rows            []DeliveryRow
	Pager           Pager
	CSV             string
	Redelivered     int
	RedeliverFailed string
}

func deliveryStatuses(cur string) []Option {
	return options(cur, "", "Any", "PENDING", "Pending", "DELIVERED", "Delivered", "FAILED", "Failed")
}

func (c *Console) handleCallbacks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, off := pageOf(q)
	list, total, err := c.d.Callbacks.List(r.Context(), callback.Filter{Status: q.Get("status"), Page: sqlpage.Request{Limit: PageSize, Offset: off}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := DeliveriesView{Frame: frame(r, "Callbacks", "callbacks"), What: "callbacks", Base: "/console/callbacks", Status: q.Get("status"),
		Statuses: deliveryStatuses(q.Get("status")), Pager: pager("/console/callbacks", q, pg, total.Total, len(list)),
		CSV: csvURL("/console/callbacks", q), RedeliverFailed: "/console/callbacks/redeliver-failed"}
	v.Redelivered, _ = strconv.Atoi(q.Get("redelivered"))
	for _, cb := range list {
		v.Rows = append(v.Rows, callbackRow(cb))
	}
	c.render(w, r, http.StatusOK, "deliveries", v)
}

func (c *Console) handleCallbacksCSV(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	startCSV(w, "callbacks.csv")
	cw := csv.NewWriter(w)
	cw.Write([]string{"id", "created_at", "callback_type", "status", "attempts", "last", "subject", "delivered_at"}) //nolint:errcheck // csv.Writer keeps the first error
	page := sqlpage.Request{Limit: 1000}
	for n := 0; n < csvRows; n += 1000 {
		list, p, err := c.d.Callbacks.List(r.Context(), callback.Filter{Status: status, Page: page})
		if err != nil {
			c.log.ErrorContext(r.Context(), "console: callbacks export", "err", err)
			return
		}
		for _, cb := range list {
			d := callbackRow(cb)
			var delivered string
			if d.Delivered != nil {
				delivered = jsontime.Format(*d.Delivered)
			}
			cw.Write([]string{d.ID, jsontime.Format(d.Created), d.Kind, d.Status, strconv.Itoa(d.Attempts), d.Last, d.Subject, delivered}) //nolint:errcheck // as above
		}
		cw.Flush()
		if page.Cursor = p.Next; p.Next == "" {
			return
		}
	}
}

func (c *Console) handlePeerMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg, off := pageOf(q)
	list, total, err := c.d.Exchange.ListMessages(r.Context(), exchange.Filter{Status: q.Get("status"), Page: sqlpage.Request{Limit: PageSize, Offset: off}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := DeliveriesView{Frame: frame(r, "Peer messages", "peer-messages"), What: "peer-messages", Base: "/console/peer-messages", Status: q.Get("status"),
		Statuses: deliveryStatuses(q.Get("status")), Pager: pager("/console/peer-messages", q, pg, total.Total, len(list)),
		RedeliverFailed: "/console/peer-messages/redeliver-failed"}
	v.Redelivered, _ = strconv.Atoi(q.Get("redelivered"))
	for _, m := range list {
		d := DeliveryRow{ID: m.ID, Kind: m.Kind, Status: m.Status, Attempts: m.Attempts, Last: last(m.LastStatusCode, m.LastError),
			Created: m.Created, Subject: m.VerificationUUID, SubjectLink: "/console/verifications/" + m.VerificationUUID,
			Counterparty: m.PeerVaspID}
		if m.Delivered.Valid {
			d.Delivered = &m.Delivered.Time
		}
		if m.NextAttemptAt != nil {
			d.NextAttempt = &m.NextAttemptAt.Time
		}
		v.Rows = append(v.Rows, d)
	}
	c.render(w, r, http.StatusOK, "deliveries", v)
}

// redelivered audits one redelivery and sends the browser back to the list.
func (c *Console) redeliverOne(w http.ResponseWriter, r *http.Request, what, back string, redeliver func(id string) error) {
	id := r.PathValue("id")
	if err := redeliver(id); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.audit.Record(r.Context(), Entry{Operator: current(r.Context()).Name, Action: ActionRedeliver, Subject: id, Detail: what, IP: clientIP(r)}); err != nil {
		c.fail(w, r, err)
		return
	}
	http.Redirect(w, r, back+"?redelivered=1", http.StatusSeeOther)
}

// redeliverFailed redelivers every FAILED one, a page of a thousand at a time, auditing each.
func (c *Console) redeliverFailed(w http.ResponseWriter, r *http.Request, what, back string, failed func() ([]string, error), redeliver func(id string) error) {
	n := 0
	me, ip := current(r.Context()).Name, clientIP(r)
	for {
		ids, err := failed()
		if err != nil {
			c.fail(w, r, err)
			return
		}
		for _, id := range ids {
			if err := redeliver(id); err != nil {
				c.log.WarnContext(r.Context(), "console: redeliver", "what", what, "id", id, "err", err)
				continue
			}
			n++
			if err := c.audit.Record(r.Context(), Entry{Operator: me, Action: ActionRedeliver, Subject: id, Detail: what, IP: ip}); err != nil {
				c.fail(w, r, err)
				return
			}
		}
		if len(ids) < 1000 || n == 0 {
			break
		}
	}
	http.Redirect(w, r, back+"?"+url.Values{"redelivered": {strconv.Itoa(n)}}.Encode(), http.StatusSeeOther)
}

func (c *Console) handleRedeliverCallback(w http.ResponseWriter, r *http.Request) {
	c.redeliverOne(w, r, "callback", "/console/callbacks", func(id string) error { _, err := c.d.Callbacks.Redeliver(r.Context(), id); return err })
}

func (c *Console) handleRedeliverMessage(w http.ResponseWriter, r *http.Request) {
	c.redeliverOne(w, r, "peer message", "/console/peer-messages", func(id string) error { _, err := c.d.Exchange.Redeliver(r.Context(), id); return err })
}

func (c *Console) handleRedeliverFailedCallbacks(w http.ResponseWriter, r *http.Request) {
	c.redeliverFailed(w, r, "callback", "/console/callbacks", func() ([]string, error) {
		list, _, err := c.d.Callbacks.List(r.Context(), callback.Filter{Status: callback.StatusFailed, Page: sqlpage.Request{Limit: 1000}})
		ids := make([]string, len(list))
		for i, x := range list {
			ids[i] = x.ID
		}
		return ids, err
	}, func(id string) error { _, err := c.d.Callbacks.Redeliver(r.Context(), id); return err })
}

func (c *Console) handleRedeliverFailedMessages(w http.ResponseWriter, r *http.Request) {
	c.redeliverFailed(w, r, "peer message", "/console/peer-messages", func() ([]string, error) {
		list, _, err := c.d.Exchange.ListMessages(r.Context(), exchange.Filter{Status: exchange.StatusFailed, Page: sqlpage.Request{Limit: 1000}})
		ids := make([]string, len(list))
		for i, x := range list {
			ids[i] = x.ID
		}
		return ids, err
	}, func(id string) error { _, err := c.d.Exchange.Redeliver(r.Context(), id); return err })
}
