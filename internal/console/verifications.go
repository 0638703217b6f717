package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/verification"
	"github.com/travelrule/enclave/webhook"
)

func badRequest(err error) error { return apperr.New(apperr.BadRequest, "%s", err.Error()) }

// peerName is the counterparty's name from the peers file, or "".
func (c *Console) peerName(vaspID string) string {
	for _, p := range c.d.Peers {
		if p.VaspID == vaspID {
			return p.Name
		}
	}
	return ""
}

// VerificationRow is a verification as lists show it: no personal data.
type VerificationRow struct {
	UUID, Role, Result, Reason, Counterparty, CounterpartyName string
	Asset, Network, Amount, TxHash                             string
	Created                                                    time.Time
}

func (c *Console) verificationRow(v verification.Verification) VerificationRow {
	return VerificationRow{UUID: v.UUID, Role: string(v.Role), Result: string(v.Outcome.Result), Reason: v.Outcome.Reason,
		Counterparty: v.CounterpartyVaspID(), CounterpartyName: c.peerName(v.CounterpartyVaspID()), Asset: v.Asset,
		Network: v.Network, Amount: v.Amount, TxHash: v.TxHash, Created: v.CreatedAt}
}

// VerificationFilters are the verification list's filters, kept in the URL.
type VerificationFilters struct{ Role, Result, TxHash string }

func verificationFilters(q url.Values) VerificationFilters {
	return VerificationFilters{Role: q.Get("role"), Result: q.Get("result"), TxHash: q.Get("txHash")}
}

func (f VerificationFilters) filter(page sqlpage.Request) verification.Filter {
	return verification.Filter{Role: verification.Role(f.Role), Result: verification.Result(f.Result), TxHash: f.TxHash, Page: page}
}

// VerificationsView is the list of verifications.
type VerificationsView struct {
	Frame
	F              VerificationFilters
	Roles, Results []Option
	Rows           []VerificationRow
	Pager          Pager
	CSV            string
}

func (c *Console) handleVerifications(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := verificationFilters(q)
	pg, off := pageOf(q)
	list, total, err := c.d.Verifications.List(r.Context(), f.filter(sqlpage.Request{Limit: PageSize, Offset: off}))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := VerificationsView{Frame: frame(r, "Verifications", "verifications"), F: f,
		Roles:   options(f.Role, "", "Any", "ORIGINATOR", "Originator", "BENEFICIARY", "Beneficiary"),
		Results: options(f.Result, "", "Any", "PENDING", "Pending", "VERIFIED", "Verified", "DENIED", "Denied", "UNKNOWN", "Unknown", "ERROR", "Error"),
		Pager:   pager("/console/verifications", q, pg, total.Total, len(list)), CSV: csvURL("/console/verifications", q)}
	for _, x := range list {
		v.Rows = append(v.Rows, c.verificationRow(x))
	}
	c.render(w, r, http.StatusOK, "verifications", v)
}

func (c *Console) handleVerificationsCSV(w http.ResponseWriter, r *http.Request) {
	f := verificationFilters(r.URL.Query())
	exportCSV(c, w, r, "verifications", []string{"verification_uuid", "created_at", "role", "result", "reason", "counterparty_vasp_id", "asset", "network", "amount", "tx_hash"},
		func(page sqlpage.Request) ([]verification.Verification, sqlpage.Page, error) {
			return c.d.Verifications.List(r.Context(), f.filter(page))
		},
		func(x verification.Verification) []string {
			v := c.verificationRow(x)
			return []string{v.UUID, jsontime.Format(v.Created), v.Role, v.Result, v.Reason, v.Counterparty, v.Asset, v.Network, v.Amount, v.TxHash}
		})
}

// VerificationView is one verification's page. Payload and ResultIVMS101 are empty unless an
// analyst revealed them with this very request.
type VerificationView struct {
	Frame
	V                                     VerificationRow
	OriginatorAddress, BeneficiaryAddress string
	ErrorReport                           *verification.ErrorReport
	Assessments                           []webhook.ChainalysisKYT
	Screenings                            []webhook.AddressScreening
	Callbacks                             []callback.Record
	Messages                              []DeliveryRow
	Revealed                              bool
	Payload, ResultIVMS101                string
}

func (c *Console) handleVerification(w http.ResponseWriter, r *http.Request) {
	c.showVerification(w, r, false)
}

// handleReveal shows the verification with its IVMS101, after writing the reveal to the audit
// log. It answers the POST itself (no redirect): the personal data is never at a URL a
// browser's history keeps, and never cached (Cache-Control: no-store).
func (c *Console) handleReveal(w http.ResponseWriter, r *http.Request) {
	c.showVerification(w, r, true)
}

func (c *Console) showVerification(w http.ResponseWriter, r *http.Request, reveal bool) {
	ctx := r.Context()
	id := r.PathValue("uuid")
	find := c.d.Verifications.FindWithoutPayload
	if reveal {
		find = c.d.Verifications.Find
	}
	ver, err := find(ctx, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := VerificationView{Frame: frame(r, "Verification", "verifications"), V: c.verificationRow(ver),
		OriginatorAddress: ver.OriginatorAddress, BeneficiaryAddress: ver.BeneficiaryAddress, ErrorReport: ver.ErrorReport}
	if reveal {
		if err := c.audit.Record(ctx, Entry{Operator: v.Me, Action: ActionReveal, Subject: ver.UUID, IP: clientIP(r)}); err != nil {
			c.fail(w, r, err)
			return
		}
		v.Revealed, v.Payload, v.ResultIVMS101 = true, indent(ver.Payload), indent(ver.Outcome.Beneficiary)
	}
	as, _, err := c.d.Assessments.List(ctx, kytjob.Filter{VerificationUUID: ver.UUID, Page: sqlpage.Request{Limit: 100}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, a := range as {
		v.Assessments = append(v.Assessments, a.RiskAssessment.ChainalysisKYT)
	}
	ss, _, err := c.d.Screenings.List(ctx, screening.Filter{VerificationUUID: ver.UUID, Page: sqlpage.Request{Limit: 100}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, s := range ss {
		v.Screenings = append(v.Screenings, s.RiskAssessment.ChainalysisAddressScreening)
	}
	if v.Callbacks, _, err = c.d.Callbacks.List(ctx, callback.Filter{VerificationUUID: ver.UUID, Page: sqlpage.Request{Limit: 100}}); err != nil {
		c.fail(w, r, err)
		return
	}
	ms, _, err := c.d.Exchange.ListMessages(ctx, exchange.Filter{VerificationUUID: ver.UUID, Page: sqlpage.Request{Limit: 100}})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	for _, m := range ms {
		v.Messages = append(v.Messages, c.messageRow(m))
	}
	c.render(w, r, http.StatusOK, "verification", v)
}

func indent(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var b bytes.Buffer
	if json.Indent(&b, raw, "", "  ") != nil {
		return string(raw)
	}
	return b.String()
}
