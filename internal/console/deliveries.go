package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/outbox"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// DeliveryRow is a callback or a message to a counterparty as the deliveries pages show it.
type DeliveryRow struct {
	ID, Kind, Status, Subject, SubjectLink, Counterparty string
	CounterpartyName                                     string
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
	if cb.NextAttemptAt != nil {
		d.NextAttempt = &cb.NextAttemptAt.Time
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
	What, Base                 string
	Status, Kind, Verification string
	Statuses, Kinds            []Option
	Rows                       []DeliveryRow
	Pager                      Pager
	CSV                        string
	Redelivered, Left          int
	RedeliverFailed            string
	// Failed is how many FAILED ones the filter (status aside) matches: what the bulk
	// redelivery would start, MaxBulk at a time.
	Failed, MaxBulk int
}

func deliveryStatuses(cur string) []Option {
	return options(cur, "", "Any", "PENDING", "Pending", "DELIVERED", "Delivered", "FAILED", "Failed")
}

// MaxBulkRedeliver bounds one "redeliver every FAILED one" (within callback.MaxRedeliver): each
// is an audit entry, so a click never holds a request for long; the page says how many are left.
const MaxBulkRedeliver = 500

// deliveryFilters reads the filters both lists take, kept in the URL and in the bulk form.
func deliveryFilters(q url.Values) (status, kind, verification string) {
	return q.Get("status"), q.Get("kind"), q.Get("verification")
}

func (c *Console) callbackFilter(q url.Values, page sqlpage.Request) callback.Filter {
	status, _, verification := deliveryFilters(q)
	return callback.Filter{Status: status, VerificationUUID: verification, Page: page}
}

func (c *Console) messageFilter(q url.Values, page sqlpage.Request) exchange.Filter {
	status, kind, verification := deliveryFilters(q)
	return exchange.Filter{Status: status, Kind: kind, VerificationUUID: verification, Page: page}
}

func (c *Console) deliveriesView(r *http.Request, title, what string, total, shown int) DeliveriesView {
	q := r.URL.Query()
	pg, _ := pageOf(q)
	base := "/console/" + what
	status, kind, verification := deliveryFilters(q)
	v := DeliveriesView{Frame: frame(r, title, what), What: what, Base: base, Status: status, Kind: kind, Verification: verification,
		Statuses: deliveryStatuses(status), Pager: pager(base, q, pg, total, shown), RedeliverFailed: base + "/redeliver-failed",
		MaxBulk: MaxBulkRedeliver}
	v.Redelivered, _ = strconv.Atoi(q.Get("redelivered"))
	v.Left, _ = strconv.Atoi(q.Get("left"))
	return v
}

func (c *Console) handleCallbacks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, off := pageOf(q)
	list, total, err := c.d.Callbacks.List(r.Context(), c.callbackFilter(q, sqlpage.Request{Limit: PageSize, Offset: off}))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := c.deliveriesView(r, "Callbacks", "callbacks", total.Total, len(list))
	v.CSV = csvURL("/console/callbacks", q)
	if v.CanAdmin {
		q.Set("status", callback.StatusFailed)
		if v.Failed, err = c.countCallbacks(r, q); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	for _, cb := range list {
		v.Rows = append(v.Rows, callbackRow(cb))
	}
	c.render(w, r, http.StatusOK, "deliveries", v)
}

func (c *Console) handleCallbacksCSV(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	exportCSV(c, w, r, "callbacks", []string{"id", "created_at", "callback_type", "status", "attempts", "last", "subject", "delivered_at"},
		func(page sqlpage.Request) ([]callback.Record, sqlpage.Page, error) {
			return c.d.Callbacks.List(r.Context(), c.callbackFilter(q, page))
		},
		func(cb callback.Record) []string {
			d := callbackRow(cb)
			var delivered string
			if d.Delivered != nil {
				delivered = jsontime.Format(*d.Delivered)
			}
			return []string{d.ID, jsontime.Format(d.Created), d.Kind, d.Status, strconv.Itoa(d.Attempts), d.Last, d.Subject, delivered}
		})
}

func (c *Console) messageRow(m exchange.Record) DeliveryRow {
	d := DeliveryRow{ID: m.ID, Kind: m.Kind, Status: m.Status, Attempts: m.Attempts, Last: last(m.LastStatusCode, m.LastError),
		Created: m.Created, Subject: m.VerificationUUID, SubjectLink: "/console/verifications/" + m.VerificationUUID,
		Counterparty: m.PeerVaspID, CounterpartyName: c.peerName(m.PeerVaspID)}
	if m.Delivered.Valid {
		d.Delivered = &m.Delivered.Time
	}
	if m.NextAttemptAt != nil {
		d.NextAttempt = &m.NextAttemptAt.Time
	}
	return d
}

func (c *Console) handlePeerMessages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	_, off := pageOf(q)
	list, total, err := c.d.Exchange.ListMessages(r.Context(), c.messageFilter(q, sqlpage.Request{Limit: PageSize, Offset: off}))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := c.deliveriesView(r, "Peer messages", "peer-messages", total.Total, len(list))
	v.Kinds = options(v.Kind, "", "Any", exchange.KindVerification, "Verification", exchange.KindResult, "Result",
		exchange.KindTxReport, "Tx report", exchange.KindErrorReport, "Error report")
	if v.CanAdmin {
		q.Set("status", exchange.StatusFailed)
		if v.Failed, err = c.countMessages(r, q); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	for _, m := range list {
		v.Rows = append(v.Rows, c.messageRow(m))
	}
	c.render(w, r, http.StatusOK, "deliveries", v)
}

// redeliverOne audits one redelivery and sends the browser back to the list it came from.
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

// redeliverFailed starts again the FAILED ones the posted filter matches, at most
// MaxBulkRedeliver, through start (which returns the ids it started), audits each, and sends the
// browser back to the list with the filter, how many were redelivered and how many FAILED ones
// are left (count).
func (c *Console) redeliverFailed(w http.ResponseWriter, r *http.Request, what, back string,
	start func(q url.Values) ([]string, error), count func(q url.Values) (int, error)) {
	q := url.Values{}
	for _, k := range []string{"kind", "verification"} {
		if v := r.PostFormValue(k); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("status", outbox.Failed)
	ids, err := start(q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	me, ip := current(r.Context()).Name, clientIP(r)
	for _, id := range ids {
		if err := c.audit.Record(r.Context(), Entry{Operator: me, Action: ActionRedeliver, Subject: id, Detail: what + " (every FAILED one)", IP: ip}); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	left, err := count(q)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	q.Set("redelivered", strconv.Itoa(len(ids)))
	if left > 0 {
		q.Set("left", strconv.Itoa(left))
	}
	http.Redirect(w, r, back+"?"+q.Encode(), http.StatusSeeOther)
}

func (c *Console) handleRedeliverCallback(w http.ResponseWriter, r *http.Request) {
	c.redeliverOne(w, r, "callback", "/console/callbacks", func(id string) error { _, err := c.d.Callbacks.Redeliver(r.Context(), id); return err })
}

func (c *Console) handleRedeliverMessage(w http.ResponseWriter, r *http.Request) {
	c.redeliverOne(w, r, "peer message", "/console/peer-messages", func(id string) error { _, err := c.d.Exchange.Redeliver(r.Context(), id); return err })
}

// handleRedeliverFailedCallbacks starts the filter's FAILED callbacks again through the
// callback service's own bulk redelivery (the one POST /v1/callbacks/redeliver uses): one
// transaction, rows another holds skipped.
func (c *Console) handleRedeliverFailedCallbacks(w http.ResponseWriter, r *http.Request) {
	c.redeliverFailed(w, r, "callback", "/console/callbacks", func(q url.Values) ([]string, error) {
		done, _, err := c.d.Callbacks.RedeliverWhere(r.Context(), c.callbackFilter(q, sqlpage.Request{}), MaxBulkRedeliver)
		ids := make([]string, len(done))
		for i, d := range done {
			ids[i] = d.ID
		}
		return ids, err
	}, func(q url.Values) (int, error) { return c.countCallbacks(r, q) })
}

// countCallbacks and countMessages are how many match the filters of q.
func (c *Console) countCallbacks(r *http.Request, q url.Values) (int, error) {
	_, p, err := c.d.Callbacks.List(r.Context(), c.callbackFilter(q, sqlpage.Request{Limit: 1}))
	return p.Total, err
}

func (c *Console) countMessages(r *http.Request, q url.Values) (int, error) {
	_, p, err := c.d.Exchange.ListMessages(r.Context(), c.messageFilter(q, sqlpage.Request{Limit: 1}))
	return p.Total, err
}

// handleRedeliverFailedMessages starts the filter's FAILED peer messages again one by one
// (the exchange has no bulk redelivery of its own); one that cannot be (its verification ended
// meanwhile) is logged and skipped.
func (c *Console) handleRedeliverFailedMessages(w http.ResponseWriter, r *http.Request) {
	c.redeliverFailed(w, r, "peer message", "/console/peer-messages", func(q url.Values) ([]string, error) {
		list, _, err := c.d.Exchange.ListMessages(r.Context(), c.messageFilter(q, sqlpage.Request{Limit: MaxBulkRedeliver}))
		if err != nil {
			return nil, err
		}
		var ids []string
		for _, m := range list {
			if _, err := c.d.Exchange.Redeliver(r.Context(), m.ID); err != nil {
				c.log.WarnContext(r.Context(), "console: redeliver", "what", "peer message", "id", m.ID, "err", err)
				continue
			}
			ids = append(ids, m.ID)
		}
		return ids, nil
	}, func(q url.Values) (int, error) { return c.countMessages(r, q) })
}
