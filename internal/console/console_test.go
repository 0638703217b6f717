package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/console"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/retention"
	"github.com/travelrule/enclave/internal/seal"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// sanctioned is an address kytsim knows as OFAC-listed: assessing a transfer to it raises a
// SEVERE alert.
const sanctioned = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"

// Personal data of the verification below: the console shows it only once revealed.
const (
	personName  = "Quartermaine"
	personFirst = "Zebulon"
	personID    = "NID-7788-XYZ"
)

const wait = 20 * time.Second

type bundle struct {
	e                     *et.Enclave
	passwords             map[string]string
	verification, alertID string
	requestID             string
}

// setup starts an enclave with three operators (admin, analyst, viewer) and, unless empty,
// one verification to a sanctioned address whose assessment raised a SEVERE alert.
func setup(t *testing.T, empty bool) *bundle {
	t.Helper()
	b := &bundle{e: et.Start(t, et.Options{}), passwords: map[string]string{}}
	ops := console.NewOperators(b.e.DB)
	for _, r := range []console.Role{console.Admin, console.Analyst, console.Viewer} {
		p, err := ops.Add(context.Background(), string(r), r, "test")
		require.NoError(t, err)
		b.passwords[string(r)] = p
	}
	if empty {
		return b
	}
	b.verification, b.requestID = AlertingVerification(t, b.e)
	require.NoError(t, b.e.DB.Get(&b.alertID, `SELECT alert_id FROM kyt_alerts WHERE request_id = $1`, b.requestID))
	return b
}

// AlertingVerification creates a verification whose payload names a person, to the sanctioned
// address, and assesses it; it returns once the assessment is PROCESSED with its alert.
func AlertingVerification(t testing.TB, e *et.Enclave) (verificationUUID, requestID string) {
	body := et.VerificationBody("ETH", "Ethereum", "1.5", sanctioned)
	ivms := body["payload"].(map[string]any)["ivms101"].(map[string]any)
	ivms["originator"].(map[string]any)["originatorPersons"] = []any{map[string]any{"naturalPerson": map[string]any{
		"name":                   map[string]any{"nameIdentifier": []any{map[string]any{"primaryIdentifier": personName, "secondaryIdentifier": personFirst}}},
		"nationalIdentification": map[string]any{"nationalIdentifier": personID},
	}}}
	raw, _ := json.Marshal(body)
	r := e.Client.Do("POST", "/v1/verifications", raw, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var out struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(r.Body, &out))
	requestID = e.Assess(out.VerificationUUID, "")
	e.Receiver.Terminal(t, requestID, wait)
	return out.VerificationUUID, requestID
}

// browser is an HTTP client with a cookie jar that does not follow redirects, so each answer
// is seen as sent.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (b *bundle) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: b.e.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func (br *browser) do(method, path string, form url.Values, header ...string) answer {
	br.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, br.base+path, body)
	require.NoError(br.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := br.c.Do(req)
	require.NoError(br.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b)}
}

func (br *browser) get(path string) answer { return br.do("GET", path, nil) }

func (br *browser) post(path string, form url.Values) answer { return br.do("POST", path, form) }

func (br *browser) login(name, password string) answer {
	br.t.Helper()
	return br.post("/console/login", url.Values{"name": {name}, "password": {password}, "next": {"/console/alerts"}})
}

func (b *bundle) as(t *testing.T, role string) *browser {
	t.Helper()
	br := b.browser(t)
	a := br.login(role, b.passwords[role])
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	return br
}

func TestLoginLogoutAndSessions(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	br := b.browser(t)

	a := br.get("/console/alerts?level=SEVERE")
	require.Equal(t, http.StatusSeeOther, a.status, "no session: sent to log in")
	require.Equal(t, "/console/login?next="+url.QueryEscape("/console/alerts?level=SEVERE"), a.header.Get("Location"))

	a = br.get("/console/login")
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, `<label for="password">Password</label>`)
	csp := a.header.Get("Content-Security-Policy")
	require.Contains(t, csp, "frame-ancestors 'none'")
	require.Contains(t, csp, "script-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "nosniff", a.header.Get("X-Content-Type-Options"))
	require.NotContains(t, a.body, "<script>", "no inline script")

	a = br.login("admin", "wrong password")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Contains(t, a.body, "Wrong name or password")
	a = br.login("nobody", "whatever")
	require.Equal(t, http.StatusUnauthorized, a.status, "an unknown name answers as a wrong password")

	a = br.login("admin", b.passwords["admin"])
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Equal(t, "/console/alerts", a.header.Get("Location"))
	cookie := a.header.Get("Set-Cookie")
	require.Contains(t, cookie, "enclave_console=")
	require.Contains(t, cookie, "HttpOnly")
	require.Contains(t, cookie, "SameSite=Strict")
	require.Contains(t, cookie, "Path=/console")
	require.NotContains(t, cookie, "Secure", "plain HTTP on a loopback address: no Secure flag")

	a = br.get("/console/alerts")
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, "No alert matches these filters", "the empty queue says so")
	require.Contains(t, a.body, "admin")

	// A session that expired (idle or absolute) sends the browser to log in again.
	_, err := b.e.DB.Exec(`UPDATE console_sessions SET expiry = now() - interval '1 second'`)
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, br.get("/console/alerts").status)
	require.Equal(t, http.StatusSeeOther, br.login("admin", b.passwords["admin"]).status)
	require.Equal(t, 200, br.get("/console/alerts").status)

	a = br.post("/console/logout", url.Values{})
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, http.StatusSeeOther, br.get("/console/alerts").status, "logged out")
	var n int
	require.NoError(t, b.e.DB.Get(&n, `SELECT count(*) FROM console_sessions WHERE expiry > now()`))
	require.Zero(t, n, "logout destroys the session server-side")

	// A disabled operator's session ends at its next request.
	v := b.as(t, "viewer")
	require.Equal(t, 200, v.get("/console/alerts").status)
	require.NoError(t, console.NewOperators(b.e.DB).Disable(context.Background(), "viewer", "test"))
	require.Equal(t, http.StatusSeeOther, v.get("/console/alerts").status)
	require.Equal(t, http.StatusUnauthorized, b.browser(t).login("viewer", b.passwords["viewer"]).status)

	audit := b.as(t, "admin").get("/console/audit")
	for _, s := range []string{"login failed", "logout", "operator disabled", "nobody"} {
		require.Contains(t, audit.body, s)
	}
}

func TestLoginIsRateLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	console.FreezeLoginClock(b.e.App.Console, time.Now())
	br := b.browser(t)
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, br.login("analyst", "guess").status)
	}
	a := br.login("analyst", b.passwords["analyst"])
	require.Equal(t, http.StatusTooManyRequests, a.status, "the sixth attempt in a row is refused, right password or not")
	require.Contains(t, a.body, "Too many login attempts")
	require.Equal(t, "60", a.header.Get("Retry-After"))
}

func TestCrossOriginPostIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	br := b.as(t, "admin")
	a := br.do("POST", "/console/logout", url.Values{}, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, a.status)
	a = br.do("POST", "/console/login", url.Values{"name": {"admin"}, "password": {b.passwords["admin"]}}, "Origin", "https://evil.example")
	require.Equal(t, http.StatusForbidden, a.status)
	require.Equal(t, 200, br.get("/console/alerts").status, "still logged in")
}

func TestTriageAnAlert(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	an := b.as(t, "analyst")

	q := an.get("/console/alerts")
	require.Equal(t, 200, q.status)
	require.Contains(t, q.body, b.alertID)
	require.Contains(t, q.body, "SEVERE")
	require.Contains(t, q.body, "sanctioned entity")
	require.Contains(t, q.body, "Unreviewed")
	require.NotContains(t, q.body, personName)
	require.Contains(t, an.get("/console/alerts?level=LOW").body, "No alert matches", "a filter in the URL")
	require.Contains(t, an.get("/console/alerts?level=LOW").body, `<option value="LOW" selected>`, "kept in the form")

	page := "/console/alerts/" + b.alertID
	a := an.get(page)
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, b.requestID, "its assessment")
	require.Contains(t, a.body, b.verification, "its verification")
	require.Contains(t, a.body, "Assign to me")

	require.Equal(t, http.StatusSeeOther, an.post(page+"/assign", url.Values{}).status)
	require.Equal(t, http.StatusSeeOther, an.post(page+"/status", url.Values{"status": {"In Review"}}).status)
	a = an.post(page+"/status", url.Values{"status": {"Flagged"}})
	require.Equal(t, http.StatusConflict, a.status, "Flagged needs a note")
	require.Contains(t, a.body, "Flagged needs a note")
	a = an.post(page+"/status", url.Values{"status": {"Unreviewed"}, "note": {"back"}})
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, http.StatusConflict, an.post(page+"/status", url.Values{"status": {"Dismissed"}, "note": {"x"}}).status,
		"an Unreviewed alert is taken into review before it is closed")
	require.Equal(t, http.StatusSeeOther, an.post(page+"/status", url.Values{"status": {"In Review"}}).status)
	require.Equal(t, http.StatusSeeOther, an.post(page+"/status", url.Values{"status": {"Flagged"}, "note": {"Lazarus: file a SAR"}}).status)

	a = an.get(page)
	require.Contains(t, a.body, "Lazarus: file a SAR")
	require.Contains(t, a.body, "In Review → Flagged")
	require.Contains(t, a.body, "nobody → analyst")
	require.Contains(t, an.get("/console/alerts").body, "No alert matches", "a Flagged alert leaves the open queue")
	require.Contains(t, an.get("/console/alerts?status=Flagged").body, b.alertID)
	require.Contains(t, an.get("/console/alerts?status=any&assignee=analyst").body, b.alertID)

	audit := an.get("/console/audit?subject=" + b.alertID).body
	require.Contains(t, audit, "In Review → Flagged")
	require.NotContains(t, audit, "Lazarus", "a note's words stay with the alert, out of the audit log")

	csv := an.get("/console/alerts.csv?status=any")
	require.Equal(t, 200, csv.status)
	require.Equal(t, "text/csv; charset=utf-8", csv.header.Get("Content-Type"))
	require.Contains(t, csv.body, b.alertID+",")
	require.Contains(t, csv.body, ",Flagged,analyst,")
	require.NotContains(t, csv.body, personName)

	// A viewer reads but cannot triage.
	v := b.as(t, "viewer")
	a = v.get(page)
	require.Equal(t, 200, a.status)
	require.NotContains(t, a.body, "Assign to me")
	require.Equal(t, http.StatusForbidden, v.post(page+"/assign", url.Values{}).status)
	require.Equal(t, http.StatusForbidden, v.post(page+"/status", url.Values{"status": {"In Review"}}).status)

	require.Equal(t, http.StatusNotFound, an.get("/console/alerts/no-such-alert").status)
	require.Equal(t, http.StatusNotFound, an.post("/console/alerts/no-such-alert/assign", url.Values{}).status)
}

func TestRevealIsAuditedAndForAnalysts(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	page := "/console/verifications/" + b.verification

	v := b.as(t, "viewer")
	a := v.get(page)
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, "Masked")
	require.NotContains(t, a.body, personName)
	require.NotContains(t, a.body, "Reveal IVMS101")
	require.Equal(t, http.StatusForbidden, v.post(page+"/reveal", url.Values{}).status)
	require.NotContains(t, v.get("/console/verifications").body, personName)
	require.NotContains(t, v.get("/console/verifications.csv").body, personName)

	an := b.as(t, "analyst")
	require.Contains(t, an.get(page).body, "Reveal IVMS101")
	a = an.post(page+"/reveal", url.Values{})
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, personName)
	require.Contains(t, a.body, personID)
	require.Equal(t, "no-store", a.header.Get("Cache-Control"))
	require.NotContains(t, an.get(page).body, personName, "masked again on the next visit")

	audit := an.get("/console/audit?action=" + url.QueryEscape(console.ActionReveal)).body
	require.Contains(t, audit, b.verification)
	require.Contains(t, audit, "analyst")
	require.NotContains(t, audit, personName)
	require.NotContains(t, b.e.Logs.String(), personName, "nothing personal in the logs")
}

func TestRedeliverAFailedCallback(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	b.e.Receiver.Respond(func(int, *http.Request) int { return 500 })
	v := b.e.CreateOutgoing("ETH", "Ethereum", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	req := b.e.Assess(v, "")
	var id string
	require.Eventually(t, func() bool {
		return b.e.DB.Get(&id, `SELECT id FROM callbacks WHERE request_id = $1 AND status = 'FAILED'`, req) == nil
	}, wait, 20*time.Millisecond, "the callback fails after its schedule")
	b.e.Receiver.Respond(nil)

	ad := b.as(t, "admin")
	a := ad.get("/console/callbacks?status=FAILED")
	require.Contains(t, a.body, "/console/callbacks/"+id+"/redeliver")
	require.Contains(t, a.body, "500")
	an := b.as(t, "analyst")
	require.NotContains(t, an.get("/console/callbacks?status=FAILED").body, "/redeliver", "no redeliver form for an analyst")
	require.Equal(t, http.StatusForbidden, an.post("/console/callbacks/"+id+"/redeliver", url.Values{}).status)

	a = ad.post("/console/callbacks/"+id+"/redeliver", url.Values{})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Eventually(t, func() bool {
		var st string
		return b.e.DB.Get(&st, `SELECT status FROM callbacks WHERE id = $1`, id) == nil && st == "DELIVERED"
	}, wait, 20*time.Millisecond)
	require.Contains(t, ad.get("/console/callbacks?status=DELIVERED").body, "DELIVERED")
	require.Contains(t, ad.get("/console/audit?action=redeliver").body, id)
	require.Equal(t, http.StatusSeeOther, ad.post("/console/callbacks/"+id+"/redeliver", url.Values{}).status,
		"a DELIVERED one is sent again too (the receiver lost it), through the same service")
	a = ad.post("/console/callbacks/redeliver-failed", url.Values{})
	require.Equal(t, http.StatusSeeOther, a.status)
	require.Equal(t, "/console/callbacks?redelivered=0&status=FAILED", a.header.Get("Location"))
}

// TestRedeliverFailedPeerMessages: tx reports a counterparty refused are FAILED on the peer
// messages page; an admin redelivers one, then every FAILED one of a filter, each audited,
// and each is DELIVERED once the counterparty takes them.
func TestRedeliverFailedPeerMessages(t *testing.T) {
	t.Parallel()
	var refuse atomic.Bool
	refuse.Store(true)
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only answered
		if refuse.Load() && r.URL.Path == "/peer/v1/verifications/tx" {
			http.Error(w, `{"code":"BAD-REQUEST","message":"not today"}`, http.StatusBadRequest) // a 4xx: FAILED at once
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":true}`) //nolint:errcheck // retried if lost
	}))
	t.Cleanup(peer.Close)
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.Peers[0].URL = peer.URL }})
	ops := console.NewOperators(e.DB)
	b := &bundle{e: e, passwords: map[string]string{}}
	for _, r := range []console.Role{console.Admin, console.Analyst} {
		p, err := ops.Add(context.Background(), string(r), r, "test")
		require.NoError(t, err)
		b.passwords[string(r)] = p
	}
	var vs []string
	for i := range 3 {
		vs = append(vs, e.CreateOutgoing("ETH", "Ethereum", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"))
		e.ReportTx(vs[i], et.TxHash(vs[i]))
	}
	failed := func() int {
		var n int
		require.NoError(t, e.DB.Get(&n, `SELECT count(*) FROM peer_messages WHERE status = 'FAILED'`))
		return n
	}
	require.Eventually(t, func() bool { return failed() == 3 }, wait, 20*time.Millisecond, "the counterparty refuses them")
	var first string
	require.NoError(t, e.DB.Get(&first, `SELECT id FROM peer_messages WHERE verification_uuid = $1 AND kind = 'TX_REPORT'`, vs[0]))

	ad := b.as(t, "admin")
	a := ad.get("/console/peer-messages?status=FAILED")
	require.Equal(t, 200, a.status)
	require.Contains(t, a.body, "/console/peer-messages/"+first+"/redeliver")
	require.Contains(t, a.body, "not today", "the counterparty's answer")
	require.Contains(t, a.body, "Redeliver every FAILED one in this filter (3)")
	an := b.as(t, "analyst")
	require.NotContains(t, an.get("/console/peer-messages?status=FAILED").body, "redeliver")
	require.Equal(t, http.StatusForbidden, an.post("/console/peer-messages/"+first+"/redeliver", url.Values{}).status)
	require.Equal(t, http.StatusForbidden, an.post("/console/peer-messages/redeliver-failed", url.Values{}).status)

	refuse.Store(false)
	require.Equal(t, http.StatusSeeOther, ad.post("/console/peer-messages/"+first+"/redeliver", url.Values{}).status)
	require.Eventually(t, func() bool { return failed() == 2 }, wait, 20*time.Millisecond)

	// Every FAILED one of a filter: only the one about vs[1].
	a = ad.post("/console/peer-messages/redeliver-failed", url.Values{"verification": {vs[1]}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Equal(t, "/console/peer-messages?redelivered=1&status=FAILED&verification="+vs[1], a.header.Get("Location"))
	require.Eventually(t, func() bool { return failed() == 1 }, wait, 20*time.Millisecond, "the one of the filter only")
	a = ad.post("/console/peer-messages/redeliver-failed", url.Values{"kind": {"TX_REPORT"}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Contains(t, a.header.Get("Location"), "redelivered=1")
	require.Eventually(t, func() bool {
		var n int
		return e.DB.Get(&n, `SELECT count(*) FROM peer_messages WHERE status = 'DELIVERED'`) == nil && n == 6
	}, wait, 20*time.Millisecond)
	require.Contains(t, ad.get("/console/peer-messages?status=DELIVERED").body, "DELIVERED")

	audit := ad.get("/console/audit?action=redeliver").body
	require.Contains(t, audit, first)
	require.Contains(t, audit, "peer message (every FAILED one)")
	var n int
	require.NoError(t, e.DB.Get(&n, `SELECT count(*) FROM console_audit WHERE action = 'redeliver'`))
	require.Equal(t, 3, n, "each redelivery audited")
}

// many is how many more rows of each list manyRows adds: more than a page.
const many = console.PageSize + 12

// manyRows copies the one verification of a non-empty setup, its assessment, alert, callback
// and peer message many times over (jsonb_populate_record: every column as the original's but
// those named), adds as many screenings and audit entries, and returns. The alerts' levels
// cycle LOW, MEDIUM, HIGH, SEVERE, one a minute older than the next; every third is of the
// category "gambling" and unassigned, the others Flagged by the analyst.
func manyRows(t *testing.T, b *bundle) {
	t.Helper()
	// One multi-statement string, so no placeholders: the values are the fixture's own.
	_, err := b.e.DB.Exec(strings.NewReplacer("$1", "'"+b.verification+"'", "$2", strconv.Itoa(many), "$3", "'"+b.requestID+"'").Replace(`
		INSERT INTO verifications SELECT (jsonb_populate_record(v, jsonb_build_object('uuid', gen_random_uuid(),
			'created_at', v.created_at - i * interval '1 minute'))).* FROM verifications v, generate_series(1, $2) i WHERE v.uuid = $1;
		INSERT INTO kyt_results SELECT (jsonb_populate_record(k, jsonb_build_object('request_id', gen_random_uuid(),
			'created_at', k.created_at - i * interval '1 minute', 'status', (ARRAY['PENDING','PROCESSED','ERROR'])[i % 3 + 1]))).*
			FROM kyt_results k, generate_series(1, $2) i WHERE k.request_id = $3;
		INSERT INTO kyt_alerts SELECT (jsonb_populate_record(a, jsonb_build_object('alert_id', 'alert-' || i,
			'created_at', a.created_at - i * interval '1 minute', 'alert_level', (ARRAY['LOW','MEDIUM','HIGH','SEVERE'])[i % 4 + 1],
			'entity_category', CASE WHEN i % 3 = 0 THEN 'gambling' ELSE a.entity_category END))).*
			FROM kyt_alerts a, generate_series(1, $2) i WHERE a.request_id = $3;
		INSERT INTO console_alert_triage (alert_id, status, assignee) SELECT 'alert-' || i, 'Flagged', 'analyst'
			FROM generate_series(1, $2) i WHERE i % 3 <> 0;
		INSERT INTO callbacks SELECT (jsonb_populate_record(c, jsonb_build_object('id', gen_random_uuid(), 'terminal', false,
			'created_at', c.created_at - i * interval '1 minute', 'status', 'FAILED', 'last_status_code', 500, 'delivered_at', null))).*
			FROM callbacks c, generate_series(1, $2) i WHERE c.request_id = $3 AND c.terminal;
		INSERT INTO peer_messages SELECT (jsonb_populate_record(m, jsonb_build_object('id', gen_random_uuid(), 'seq', m.seq + i,
			'created_at', m.created_at - i * interval '1 minute', 'status', 'FAILED', 'last_status_code', null, 'last_error', 'connection refused',
			'delivered_at', null))).*
			FROM peer_messages m, generate_series(1, $2) i WHERE m.verification_uuid = $1 AND m.seq = 1;
		INSERT INTO screening_results (request_id, verification_uuid, counterparty_vasp_id, address, status, risk, created_at)
			SELECT gen_random_uuid(), $1, 'their-vasp', '0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1', 'PROCESSED',
				(ARRAY['Low','Medium','High','Severe'])[i % 4 + 1], now() - i * interval '1 minute' FROM generate_series(1, $2) i;
		INSERT INTO console_audit (operator, action, subject) SELECT 'analyst', 'note', 'alert-' || i FROM generate_series(1, $2) i;`))
	require.NoError(t, err)
}

// TestEveryPage renders each page empty, with one row and with more than a page of rows, for
// the admin (who sees every page); no page shows a personal detail or a secret.
func TestEveryPage(t *testing.T) {
	t.Parallel()
	pages := []string{"/console/overview", "/console/alerts", "/console/alerts?status=any", "/console/verifications", "/console/assessments",
		"/console/screenings", "/console/callbacks", "/console/peer-messages", "/console/counterparties", "/console/audit",
		"/console/operators", "/console/alerts.csv", "/console/verifications.csv", "/console/callbacks.csv", "/console/audit.csv"}
	check := func(t *testing.T, ad *browser, extra ...string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, p := range append(pages, extra...) {
			a := ad.get(p)
			require.Equal(t, 200, a.status, "%s: %s", p, a.body)
			require.NotContains(t, a.body, personName, p)
			require.NotContains(t, a.body, personID, p)
			require.NotContains(t, a.body, "whsec_", "%s: no secret", p)
			out[p] = a.body
		}
		return out
	}

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		b := setup(t, true)
		ad := b.as(t, "admin")
		got := check(t, ad)
		require.Contains(t, got["/console/alerts"], "No alert matches these filters")
		for _, p := range []string{"/console/verifications", "/console/assessments", "/console/screenings", "/console/callbacks", "/console/peer-messages"} {
			require.Contains(t, got[p], "nothing to show", p)
		}
		require.Contains(t, got["/console/overview"], "No monitoring sync has run")
		require.Contains(t, got["/console/counterparties"], "Their VASP")
		require.Contains(t, got["/console/counterparties"], "DOWN", "never probed")
		require.Equal(t, http.StatusForbidden, b.as(t, "analyst").get("/console/operators").status)
		require.Equal(t, http.StatusSeeOther, ad.get("/console").status)
		require.Equal(t, http.StatusNotFound, ad.get("/console/nowhere").status)
	})

	t.Run("OneAndMany", func(t *testing.T) {
		t.Parallel()
		b := setup(t, false)
		ad := b.as(t, "admin")
		got := check(t, ad, "/console/alerts/"+b.alertID, "/console/verifications/"+b.verification, "/console/assessments/"+b.requestID)
		require.Contains(t, got["/console/alerts"], b.alertID)
		require.Contains(t, got["/console/alerts"], "1–1 of 1")
		require.Contains(t, got["/console/verifications"], "1–1 of 1")
		require.Contains(t, got["/console/peer-messages"], "1–1 of 1")
		require.Contains(t, got["/console/overview"], `<span class="n">1</span> <span class="label">SEVERE</span>`)
		require.Contains(t, got["/console/counterparties"], "Last seen")
		require.Contains(t, got["/console/verifications/"+b.verification], `VERIFICATION</a>`, "its message to the counterparty")

		manyRows(t, b)
		got = check(t, ad)
		for p, total := range map[string]int{"/console/verifications": many + 1, "/console/screenings": many, "/console/callbacks": many + 1,
			"/console/peer-messages": many + 1, "/console/alerts?status=any": many + 1} {
			require.Contains(t, got[p], fmt.Sprintf("1–%d of %d", console.PageSize, total), p)
			require.Contains(t, got[p], `rel="next"`, p)
		}
		require.Contains(t, got["/console/audit"], fmt.Sprintf("of %d", many+4), "three operators added, a login, and the notes")

		// The queue: open alerts, most severe and oldest first; paging keeps the filters.
		q := got["/console/alerts"]
		open := 1 + many/3 // the real one and every third copy: no triage row
		require.Contains(t, q, fmt.Sprintf("of %d", open))
		require.Less(t, strings.Index(q, `class="level severe"`), strings.Index(q, `class="level high"`), "most severe first")
		q = ad.get("/console/alerts?status=any&level=SEVERE").body
		first := regexp.MustCompile(`href="/console/alerts/([^"]+)"`).FindStringSubmatch(q)
		oldest := many - (many-3)%4 // the copies i ≡ 3 (mod 4) are SEVERE, i minutes older than the original
		require.Equal(t, fmt.Sprintf("alert-%d", oldest), first[1], "the oldest SEVERE alert first")
		a := ad.get("/console/alerts?status=any&category=gambling&unassigned=1")
		require.Contains(t, a.body, fmt.Sprintf("of %d", many/3), "category and unassigned")
		require.Contains(t, a.body, `value="gambling"`, "kept in the form")
		require.Contains(t, a.body, `name="unassigned" value="1" checked`)
		a = ad.get("/console/alerts?status=any&service=" + url.QueryEscape("lazarus"))
		require.Contains(t, a.body, fmt.Sprintf("of %d", many+1), "the service's name contains it, in any case")
		require.Contains(t, ad.get("/console/alerts?status=any&service=nothing").body, "No alert matches")
		a = ad.get("/console/alerts?status=any&direction=OUTGOING")
		next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(a.body)
		require.Len(t, next, 2)
		link := strings.ReplaceAll(next[1], "&amp;", "&")
		u, err := url.Parse(link)
		require.NoError(t, err)
		require.Equal(t, "2", u.Query().Get("page"))
		require.Equal(t, "any", u.Query().Get("status"), "the filters kept in the next page's link")
		require.Equal(t, "OUTGOING", u.Query().Get("direction"))
		a = ad.get(link)
		require.Contains(t, a.body, fmt.Sprintf("%d–%d of %d", console.PageSize+1, many+1, many+1))
		require.Contains(t, a.body, `rel="prev"`)
		require.NotContains(t, a.body, `rel="next"`)
		a = ad.get("/console/alerts?status=any&order=newest")
		require.Contains(t, a.body, `<option value="newest" selected>`)
		require.Less(t, strings.Index(a.body, b.alertID), strings.Index(a.body, "alert-1\""), "newest first on request")
		require.Equal(t, http.StatusBadRequest, ad.get("/console/alerts?order=sideways").status)

		// Deliveries: a filter kept in the bulk form and the next page.
		a = ad.get("/console/peer-messages?status=FAILED&kind=VERIFICATION")
		require.Contains(t, a.body, fmt.Sprintf("Redeliver every FAILED one in this filter (%d)", many))
		require.Contains(t, a.body, `<input type="hidden" name="kind" value="VERIFICATION">`)
		require.Contains(t, a.body, "connection refused")
		require.Contains(t, a.body, "kind=VERIFICATION&amp;page=2&amp;status=FAILED")
		require.Contains(t, ad.get("/console/overview").body, fmt.Sprintf(`<span class="n">%d</span> <span class="label">FAILED</span>`, many))
		csv := ad.get("/console/alerts.csv?status=any").body
		require.Equal(t, many+2, strings.Count(csv, "\n"), "every row, every page, and the header")

		// Every FAILED callback of the filter, through the callback service's bulk redelivery.
		a = ad.post("/console/callbacks/redeliver-failed", url.Values{})
		require.Equal(t, http.StatusSeeOther, a.status, a.body)
		require.Contains(t, a.header.Get("Location"), fmt.Sprintf("redelivered=%d", many))
		var audited int
		require.NoError(t, b.e.DB.Get(&audited, `SELECT count(*) FROM console_audit WHERE action = 'redeliver' AND detail = 'callback (every FAILED one)'`))
		require.Equal(t, many, audited, "each audited")
	})
}

// TestOperatorsManagedByAdmins: an admin adds an operator (the password shown once, on that
// answer only), changes a role and disables one, each in the audit log; nobody else can, an
// admin cannot lock themselves out, and the last admin stays one.
func TestOperatorsManagedByAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t, true)
	ad := b.as(t, "admin")

	a := ad.post("/console/operators", url.Values{"name": {"Dana"}, "role": {"analyst"}})
	require.Equal(t, 200, a.status, a.body)
	m := regexp.MustCompile(`id="new-password">([^<]+)<`).FindStringSubmatch(a.body)
	require.Len(t, m, 2, "the password is shown once")
	require.Equal(t, "no-store", a.header.Get("Cache-Control"))
	require.NotContains(t, ad.get("/console/operators").body, m[1], "and never again")
	require.Equal(t, http.StatusConflict, ad.post("/console/operators", url.Values{"name": {"dana"}, "role": {"viewer"}}).status, "a name taken")
	require.Equal(t, http.StatusConflict, ad.post("/console/operators", url.Values{"name": {"Not a name!"}, "role": {"viewer"}}).status)
	require.Equal(t, http.StatusConflict, ad.post("/console/operators", url.Values{"name": {"eve"}, "role": {"root"}}).status)

	dana := b.browser(t)
	require.Equal(t, http.StatusSeeOther, dana.login("dana", m[1]).status, "the new operator logs in")
	require.Equal(t, http.StatusForbidden, dana.get("/console/operators").status)

	a = ad.post("/console/operators/dana/role", url.Values{"role": {"viewer"}})
	require.Equal(t, http.StatusSeeOther, a.status, a.body)
	require.Contains(t, ad.get(a.header.Get("Location")).body, "Role changed")
	require.Equal(t, http.StatusForbidden, dana.post("/console/alerts/x/assign", url.Values{}).status, "a viewer from the next request on")
	require.Equal(t, http.StatusSeeOther, ad.post("/console/operators/dana/disable", url.Values{}).status)
	require.Equal(t, http.StatusSeeOther, dana.get("/console/alerts").status, "a disabled operator's session ends")
	require.Equal(t, http.StatusNotFound, ad.post("/console/operators/nobody/disable", url.Values{}).status)

	a = ad.post("/console/operators/dana/password", url.Values{})
	require.Equal(t, 200, a.status)
	m = regexp.MustCompile(`id="new-password">([^<]+)<`).FindStringSubmatch(a.body)
	require.Len(t, m, 2)
	require.Equal(t, http.StatusSeeOther, b.browser(t).login("dana", m[1]).status, "enabled again with a new password")

	// Nobody else manages operators; an admin cannot lock themselves out.
	for _, role := range []string{"analyst", "viewer"} {
		br := b.as(t, role)
		require.Equal(t, http.StatusForbidden, br.post("/console/operators", url.Values{"name": {"mallory"}, "role": {"admin"}}).status)
		require.Equal(t, http.StatusForbidden, br.post("/console/operators/"+role+"/role", url.Values{"role": {"admin"}}).status)
		require.Equal(t, http.StatusForbidden, br.post("/console/operators/admin/disable", url.Values{}).status)
	}
	a = ad.post("/console/operators/admin/disable", url.Values{})
	require.Equal(t, http.StatusConflict, a.status)
	require.Contains(t, a.body, "you cannot disable yourself")
	require.Equal(t, http.StatusConflict, ad.post("/console/operators/admin/role", url.Values{"role": {"viewer"}}).status)
	require.ErrorIs(t, console.NewOperators(b.e.DB).SetRole(context.Background(), "admin", console.Viewer, "test"), console.ErrLastAdmin)

	audit := ad.get("/console/audit?subject=dana").body
	for _, s := range []string{"operator added", "role analyst", "role changed", "analyst → viewer", "operator disabled", "password reset"} {
		require.Contains(t, audit, s)
	}
	require.NotContains(t, audit, m[1], "no password in the audit log")
}

// TestNotesAreSealedAndRekeyed: a note is stored sealed with the data keyset, never as text;
// one written before notes were sealed is read as it is, until rekey seals it; retention takes
// the notes and triage with their alert. The audit log, append-only, keeps its lines, which hold
// no personal data.
func TestNotesAreSealedAndRekeyed(t *testing.T) {
	t.Parallel()
	b := setup(t, false)
	an := b.as(t, "analyst")
	page := "/console/alerts/" + b.alertID
	require.Equal(t, http.StatusSeeOther, an.post(page+"/notes", url.Values{"note": {"Customer " + personName + " called"}}).status)
	var plain int
	require.NoError(t, b.e.DB.Get(&plain, `SELECT count(*) FROM console_alert_notes WHERE body IS NOT NULL OR position($1 in encode(body_sealed, 'escape')) > 0`, personName))
	require.Zero(t, plain, "sealed, never as text")
	require.Contains(t, an.get(page).body, "Customer "+personName+" called", "opened to be shown")

	_, err := b.e.DB.Exec(`INSERT INTO console_alert_notes (alert_id, operator, body) VALUES ($1, 'analyst', 'written before notes were sealed')`, b.alertID)
	require.NoError(t, err)
	require.Contains(t, an.get(page).body, "written before notes were sealed")
	s, err := seal.Load(b.e.Config.DataKeyset)
	require.NoError(t, err)
	n, left, err := console.NewTriages(b.e.DB, s).Rekey(context.Background(), 10)
	require.NoError(t, err)
	require.Equal(t, 1, n, "only the plain one: the other is under the primary key already")
	require.Zero(t, left)
	require.NoError(t, b.e.DB.Get(&plain, `SELECT count(*) FROM console_alert_notes WHERE body IS NOT NULL`))
	require.Zero(t, plain)
	require.Contains(t, an.get(page).body, "written before notes were sealed", "still read after rekey")

	// Retention deletes the verification with its alert, and the alert's triage and notes go with it.
	require.Equal(t, http.StatusSeeOther, an.post(page+"/assign", url.Values{}).status)
	p, err := retention.NewPurger(b.e.DB, time.Nanosecond, slog.New(slog.DiscardHandler), nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		c, err := p.Batch(context.Background(), 10)
		require.NoError(t, err)
		return c.Verifications == 1
	}, wait, 50*time.Millisecond, "purged once its deliveries are done")
	for _, table := range []string{"console_alert_notes", "console_alert_triage", "kyt_alerts"} {
		var left int
		require.NoError(t, b.e.DB.Get(&left, `SELECT count(*) FROM `+table))
		require.Zero(t, left, table)
	}
	require.Contains(t, an.get("/console/audit?subject="+b.alertID).body, "note added", "the audit log keeps its lines")
}
