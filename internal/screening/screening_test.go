package screening_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

// TestMain runs the tests side by side: they wait on Chainalysis and receivers, not on the
// CPU (go test would run GOMAXPROCS of them at once unless -parallel says otherwise).
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		flag.Set("test.parallel", "16") //nolint:errcheck // the flag exists
	}
	dbtest.Main(m)
}

const wait = 30 * time.Second

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// assetFor is an asset whose network takes the address.
func assetFor(address string) string {
	if strings.HasPrefix(address, "0x") {
		return "ETH"
	}
	return "BTC"
}

// incoming has the counterparty send us a BENEFICIARY verification whose originator wallet is
// originator, and returns its uuid.
func incoming(e *et.Enclave, originator string) string {
	e.T.Helper()
	id := uuid.NewString()
	asset := assetFor(originator)
	ours := "0x3d21a92285bf17cbdde5f77531b8b58ac400288a"
	if asset == "BTC" {
		ours = "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"
	}
	body := map[string]any{"verificationUuid": id, "originatingVaspId": et.TheirVasp, "beneficiaryVaspId": et.OurVasp,
		"assetInfo": map[string]any{"symbol": asset, "amount": "1"},
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"accountNumber": []string{originator}},
			"beneficiary": map[string]any{"accountNumber": []string{ours}}}}}
	r := e.Peer("/peer/v1/verifications", mustJSON(e.T, body))
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
	return id
}

// entityCalls are the Entities API requests kytsim received about address.
func entityCalls(e *et.Enclave, address string) []string {
	var out []string
	for _, r := range e.Sim.Requests() {
		if strings.Contains(r.Path, "/v2/entities") && (strings.Contains(r.Path, address) || strings.Contains(r.Body, address)) {
			out = append(out, fmt.Sprintf("%s %s %s", r.Method, r.Path, strings.TrimSpace(r.Body)))
		}
	}
	return out
}

// simAnswer is kytsim's answer for address, as the Entities API client would read it.
func simAnswer(t *testing.T, e *et.Enclave, address string) map[string]json.RawMessage {
	t.Helper()
	req, err := http.NewRequest("GET", e.Sim.URL+"/api/risk/v2/entities/"+address, nil)
	require.NoError(t, err)
	req.Header.Set("Token", et.KYTKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	var m map[string]json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return m
}

// TestDocumentExamplesEndToEnd screens every address the two reference documents show, as the
// beneficiary's wallet of an outgoing verification: the exact Chainalysis requests (register,
// then read), and a callback carrying Chainalysis's answer field for field.
func TestDocumentExamplesEndToEnd(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	files, err := filepath.Glob("../kytsim/entities/*.json")
	require.NoError(t, err)
	require.Len(t, files, 6)
	for _, f := range files {
		addr := strings.TrimSuffix(filepath.Base(f), ".json")
		v := e.CreateOutgoing(assetFor(addr), "", "1", addr)
		id := e.Screen(v)
		got := e.Receiver.ScreeningTerminal(t, id, wait)
		require.Equal(t, webhook.TypeAddressScreeningResult, got.Type)
		a := got.Screening.RiskAssessment.ChainalysisAddressScreening
		require.Equal(t, v, got.Screening.VerificationUUID)
		require.Equal(t, "PROCESSED", a.Status, "%s", got.Body)
		require.Equal(t, addr, a.Address)
		require.Equal(t, et.TheirVasp, a.CounterpartyVaspID)
		require.Nil(t, a.Error)
		require.NotNil(t, a.AssessedAt)
		require.Equal(t, []string{
			`POST /v2/entities {"address":"` + addr + `"}`, // under /api/risk: kytsim records the path within the API
			`GET /v2/entities/` + addr + ` `,
		}, trim(entityCalls(e, addr)))

		want, err := os.ReadFile(f)
		require.NoError(t, err)
		var doc map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(want, &doc))
		var body struct {
			Data struct {
				RiskAssessment struct {
					ChainalysisAddressScreening map[string]json.RawMessage `json:"chainalysisAddressScreening"`
				} `json:"riskAssessment"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal(got.Body, &body))
		cb := body.Data.RiskAssessment.ChainalysisAddressScreening
		for k, v := range doc {
			if k == "status" {
				continue // the screening's own status: PROCESSED
			}
			require.JSONEq(t, string(v), string(cb[k]), "%s: field %s", addr, k)
		}
		require.Equal(t, "null", string(cb["addressType"]), "present, null: the documents' answers carry none")

		// GET answers the same data.
		r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-address-screening/"+id, nil, nil)
		require.Equal(t, 200, r.Status)
		var d webhook.ScreeningResultData
		require.NoError(t, json.Unmarshal(r.Body, &d))
		require.Equal(t, got.Screening.RiskAssessment.ChainalysisAddressScreening.Risk, d.RiskAssessment.ChainalysisAddressScreening.Risk)
		require.JSONEq(t, string(a.Triggers), string(d.RiskAssessment.ChainalysisAddressScreening.Triggers))
	}
}

func trim(ss []string) []string {
	for i, s := range ss {
		ss[i] = strings.TrimRight(s, "\n")
	}
	return ss
}

// TestBothRolesBeforeAndAfterTheTxReport: the address screened is always the counterparty's —
// the beneficiary's for an ORIGINATOR, the originator's for a BENEFICIARY — before the tx
// report (where KYT refuses a BENEFICIARY) and after it.
func TestBothRolesBeforeAndAfterTheTxReport(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	const lazarus = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	const clean = "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"

	out := e.CreateOutgoing("ETH", "", "1", clean)
	in := incoming(e, lazarus)
	r := e.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", mustJSON(t, map[string]any{"verificationUuid": in}), nil)
	require.Equal(t, 400, r.Status, "KYT refuses a received transfer before the tx report")
	for _, c := range []struct{ v, addr, risk string }{{out, clean, "Low"}, {in, lazarus, "Severe"}} {
		a := e.Receiver.ScreeningTerminal(t, e.Screen(c.v), wait).Screening.RiskAssessment.ChainalysisAddressScreening
		require.Equal(t, c.addr, a.Address)
		require.Equal(t, c.risk, *a.Risk)
	}
	e.ReportTx(out, et.TxHash("out"))
	e.ReceiveTxReport(in, et.TxHash("in"))
	for _, c := range []struct{ v, addr, risk string }{{out, clean, "Low"}, {in, lazarus, "Severe"}} {
		a := e.Receiver.ScreeningTerminal(t, e.Screen(c.v), wait).Screening.RiskAssessment.ChainalysisAddressScreening
		require.Equal(t, c.addr, a.Address, "after the tx report too")
		require.Equal(t, c.risk, *a.Risk)
		if c.addr == lazarus {
			require.Equal(t, "Identified as Sanctioned Entity", *a.RiskReason)
		} else {
			require.Nil(t, a.RiskReason)
		}
	}
}

// TestAcceptErrors: the KYT route's errors where they apply, in the same words, and the two of
// screening's own.
func TestAcceptErrors(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	post := func(c *et.Enclave, body string) (int, map[string]string) {
		r := c.Client.Do("POST", "/v1/risk-assessment/chainalysis-address-screening", []byte(body), nil)
		var e struct{ Code, Message string } // a BAD-REQUEST also lists its problems
		require.NoError(t, json.Unmarshal(r.Body, &e), "%s", r.Body)
		return r.Status, map[string]string{"code": e.Code, "message": e.Message}
	}
	st, m := post(e, `{}`)
	require.Equal(t, 400, st)
	require.Equal(t, map[string]string{"code": "MISSING-VERIFICATION-UUID", "message": "`verificationUuid` is required."}, m)
	missing := uuid.NewString()
	st, m = post(e, `{"verificationUuid":"`+missing+`"}`)
	require.Equal(t, 400, st)
	require.Equal(t, map[string]string{"code": "NOT-FOUND-VERIFICATION", "message": "Verification(" + missing + ") is not found"}, m)
	st, m = post(e, `{"verificationUuid":"not-a-uuid"}`)
	require.Equal(t, 400, st)
	require.Equal(t, "BAD-REQUEST", m["code"])
	require.Contains(t, m["message"], "verificationUuid")
	st, m = post(e, `{"verificationUuid":`)
	require.Equal(t, 400, st)
	require.Equal(t, "BAD-REQUEST", m["code"])

	// A BENEFICIARY verification without an originator address.
	id := uuid.NewString()
	body := et.VerificationBody("BTC", "", "1", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT")
	body["verificationUuid"], body["originatingVaspId"], body["beneficiaryVaspId"] = id, et.TheirVasp, et.OurVasp
	require.Equal(t, 200, e.Peer("/peer/v1/verifications", mustJSON(t, body)).Status)
	st, m = post(e, `{"verificationUuid":"`+id+`"}`)
	require.Equal(t, 400, st)
	require.Equal(t, "UNSUPPORTED-RISK-ASSESSMENT", m["code"])
	require.Contains(t, m["message"], "originator")

	// Prefer: wait out of range.
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	r := e.Client.Do("POST", "/v1/risk-assessment/chainalysis-address-screening", mustJSON(t, map[string]string{"verificationUuid": v}),
		http.Header{"Prefer": {"wait=31"}})
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "Prefer")

	// Not configured.
	n := et.Start(t, et.Options{Config: func(c *config.Config) { c.RiskAPIKey = "" }})
	v = n.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	st, m = post(n, `{"verificationUuid":"`+v+`"}`)
	require.Equal(t, 400, st)
	require.Equal(t, "UNSUPPORTED-RISK-ASSESSMENT", m["code"])
	require.Contains(t, m["message"], "not configured")
	require.NotContains(t, n.Logs.String(), et.KYTKey)
}

// TestEntityNotFoundIsRegisteredAgain: Chainalysis loses the registration (three reads answer
// "Entity not found"): the enclave registers the address again and ends PROCESSED.
func TestEntityNotFoundIsRegisteredAgain(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{Faults: kytsim.Faults{EntityNotFound: 3}}})
	const addr = "32PUt3ijeewVN2jjoYJqP9ReDfjhqHW3EL"
	v := e.CreateOutgoing("BTC", "", "1", addr)
	a := e.Receiver.ScreeningTerminal(t, e.Screen(v), wait).Screening.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, "PROCESSED", a.Status)
	require.Equal(t, "High", *a.Risk)
	posts := 0
	for _, c := range entityCalls(e, addr) {
		if strings.HasPrefix(c, "POST") {
			posts++
		}
	}
	require.GreaterOrEqual(t, posts, 3, "registered again after each Entity not found: %v", entityCalls(e, addr))
}

// TestLegacyPendingIsPolled: a PENDING, then IN_PROGRESS answer is asked again until COMPLETE.
func TestLegacyPendingIsPolled(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{EntityPendingReads: 2}})
	const addr = "0x2337bBCD5766Bf2A9462D493E9A459b60b41B7f2"
	v := e.CreateOutgoing("ETH", "", "1", addr)
	a := e.Receiver.ScreeningTerminal(t, e.Screen(v), wait).Screening.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, "PROCESSED", a.Status)
	require.Equal(t, "> 49% Exposure To High Risk Jurisdiction", *a.RiskReason)
	require.Len(t, entityCalls(e, addr), 4, "one registration, three reads")
}

// TestStormsAreSurvivedAndRefusalsEndInError: half the calls failing with 5xx and 429 → every
// screening PROCESSED, one terminal callback each; a 403 → ERROR with Chainalysis's message.
func TestStormsAreSurvivedAndRefusalsEndInError(t *testing.T) {
	t.Parallel()
	// (Each 429 holds back every call of the process for a second, as Chainalysis asks.)
	e := et.Start(t, et.Options{Sim: kytsim.Options{Seed: 7, Faults: kytsim.Faults{ErrorRate: 0.4, RateLimitRate: 0.1}}})
	var ids []string
	for i := range 5 {
		addr := fmt.Sprintf("0x%040x", i+1)
		ids = append(ids, e.Screen(e.CreateOutgoing("ETH", "", "1", addr)))
	}
	for _, id := range ids {
		a := e.Receiver.ScreeningTerminal(t, id, 60*time.Second).Screening.RiskAssessment.ChainalysisAddressScreening
		require.Equal(t, "PROCESSED", a.Status)
	}
	var terminal int
	require.NoError(t, e.DB.Get(&terminal, `SELECT count(*) FROM callbacks WHERE terminal AND callback_type = 'CHAINALYSIS_ADDRESS_SCREENING_RESULT'`))
	require.Equal(t, len(ids), terminal)

	f := et.Start(t, et.Options{Config: func(c *config.Config) { c.RiskAPIKey = "expired-risk-key" }})
	id := f.Screen(f.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"))
	a := f.Receiver.ScreeningTerminal(t, id, wait).Screening.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, "ERROR", a.Status)
	require.Equal(t, "ADDRESS-SCREENING-FORBIDDEN", a.Error.Code)
	require.Contains(t, a.Error.Message, "Chainalysis Address Screening answered 403: Forbidden")
	require.Nil(t, a.Risk)
	require.NotContains(t, f.Logs.String(), "expired-risk-key")
}

// TestListFilters: by verification, status and risk (any case); a bad risk names the filter.
func TestListFilters(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	lazarus := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	clean := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	for _, v := range []string{lazarus, clean, lazarus} {
		e.Receiver.ScreeningTerminal(t, e.Screen(v), wait)
	}
	list := func(q string) (int, []webhook.ScreeningResultData) {
		r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-address-screening?"+q, nil, nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		var p struct {
			Total int
			Data  []webhook.ScreeningResultData
		}
		require.NoError(t, json.Unmarshal(r.Body, &p))
		return p.Total, p.Data
	}
	n, _ := list("risk=severe")
	require.Equal(t, 2, n)
	n, d := list("verificationUuid=" + clean + "&status=PROCESSED")
	require.Equal(t, 1, n)
	require.Equal(t, "Low", *d[0].RiskAssessment.ChainalysisAddressScreening.Risk)
	n, _ = list("limit=1&offset=0")
	require.Equal(t, 3, n)
	r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-address-screening?risk=extreme", nil, nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "risk")
}

// TestPreferWait: the answer comes inline, whole, with Preference-Applied, when the screening
// ends in time — also when another enclave process works the job; otherwise the plain
// requestId, and the callback follows either way. The KYT route does the same.
func TestPreferWait(t *testing.T) {
	t.Parallel()
	worker := et.Start(t, et.Options{})
	front := et.Start(t, et.Options{DSN: worker.DSN, APIOnly: true}) // the API only: its jobs run in worker
	front.Receiver = worker.Receiver
	const lazarus = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	v := front.CreateOutgoing("ETH", "", "1", lazarus)
	prefer := http.Header{"Prefer": {"respond-async, wait=10"}}

	r := front.Client.Do("POST", "/v1/risk-assessment/chainalysis-address-screening", mustJSON(t, map[string]string{"verificationUuid": v}), prefer)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "wait=10", r.Header.Get("Preference-Applied"))
	var whole struct {
		RequestID string `json:"requestId"`
		webhook.ScreeningResultData
	}
	require.NoError(t, json.Unmarshal(r.Body, &whole))
	a := whole.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, whole.RequestID, a.RequestID)
	require.Equal(t, "PROCESSED", a.Status)
	require.Equal(t, "Severe", *a.Risk)
	cb := worker.Receiver.ScreeningTerminal(t, whole.RequestID, wait)
	require.JSONEq(t, string(mustJSON(t, a)), string(mustJSON(t, cb.Screening.RiskAssessment.ChainalysisAddressScreening)),
		"the inline answer is the callback's data")

	// KYT, a withdrawal attempt, through the other process too.
	r = front.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", mustJSON(t, map[string]string{"verificationUuid": v}), prefer)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, "wait=10", r.Header.Get("Preference-Applied"))
	var kyt struct {
		RequestID string `json:"requestId"`
		webhook.KYTResultData
	}
	require.NoError(t, json.Unmarshal(r.Body, &kyt))
	require.Equal(t, "PROCESSED", kyt.RiskAssessment.ChainalysisKYT.Status)
	require.Equal(t, kyt.RequestID, kyt.RiskAssessment.ChainalysisKYT.RequestID)
	require.Len(t, kyt.RiskAssessment.ChainalysisKYTAlerts, 1)

	// Chainalysis slower than the wait: the plain answer after about the wait, then the callback.
	worker.Sim.SetFaults(kytsim.Faults{LatencyMillis: 1500})
	start := time.Now()
	r = front.Client.Do("POST", "/v1/risk-assessment/chainalysis-address-screening", mustJSON(t, map[string]string{"verificationUuid": v}),
		http.Header{"Prefer": {"wait=1"}})
	require.Equal(t, 200, r.Status)
	require.Empty(t, r.Header.Get("Preference-Applied"))
	var plain map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &plain))
	require.Len(t, plain, 1, "only the requestId: %s", r.Body)
	require.GreaterOrEqual(t, time.Since(start), 900*time.Millisecond, "it waited (answering within the wait)")
	worker.Receiver.ScreeningTerminal(t, plain["requestId"].(string), wait)
}

// TestPreferWaitManyAtOnce: waiters on one process share its one listener; each gets its own
// screening back.
func TestPreferWaitManyAtOnce(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{Faults: kytsim.Faults{LatencyMillis: 100}}})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		addr := fmt.Sprintf("0x%040x", 100+i)
		v := e.CreateOutgoing("ETH", "", "1", addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(context.Background(), "POST", e.URL+"/v1/risk-assessment/chainalysis-address-screening",
				strings.NewReader(`{"verificationUuid":"`+v+`"}`))
			req.Header.Set("Authorization", "Bearer "+et.APIKey)
			req.Header.Set("Prefer", "wait=20")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			var d webhook.ScreeningResultData
			if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
				errs <- err
				return
			}
			if got := d.RiskAssessment.ChainalysisAddressScreening; got.Address != addr || got.Status != "PROCESSED" || resp.Header.Get("Preference-Applied") == "" {
				errs <- fmt.Errorf("%s: got %+v", addr, got)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestHostileAnswerIsStored: an Entities API answer carrying NUL characters and odd numbers is
// stored (without the NULs), not retried forever.
func TestHostileAnswerIsStored(t *testing.T) {
	t.Parallel()
	hostile := http.NewServeMux()
	hostile.HandleFunc("POST /v2/entities", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"address":"x"}`)) })
	hostile.HandleFunc("GET /v2/entities/{address}", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"address":"` + r.PathValue("address") + `","risk":"Hi\u0000gh","riskReason":"a\u0000b","cluster":{"name":"n\u0000","category":"c"},` +
			`"addressIdentifications":[],"exposures":[{"category":"x\u0000","value":1e400}],"triggers":[],"status":"COMPLETE"}`))
	})
	srv := httptest.NewServer(hostile)
	defer srv.Close()
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.RiskAPIURL = srv.URL }})
	a := e.Receiver.ScreeningTerminal(t, e.Screen(e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")), wait).
		Screening.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, "PROCESSED", a.Status)
	require.Equal(t, "High", *a.Risk)
	require.Equal(t, "ab", *a.RiskReason)
	require.JSONEq(t, `[]`, string(a.AddressIdentifications))
	require.Contains(t, string(a.Exposures), `"category":"x"`, "%s", a.Exposures)
	require.Regexp(t, `"value":1000000000`, string(a.Exposures), "the number kept exactly (PostgreSQL writes it out)")
}

// TestScreeningWithoutKYT: an enclave with only the Address Screening key screens addresses;
// its KYT routes say KYT is not configured.
func TestScreeningWithoutKYT(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.KYTAPIKey = "" }})
	v := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	a := e.Receiver.ScreeningTerminal(t, e.Screen(v), wait).Screening.RiskAssessment.ChainalysisAddressScreening
	require.Equal(t, "Severe", *a.Risk)
	for _, r := range []struct{ method, path, body string }{
		{"POST", "/v1/risk-assessment/chainalysis-kyt", `{"verificationUuid":"` + v + `"}`},
		{"GET", "/v1/counterparties/" + et.TheirVasp + "/chainalysis-kyt", ""},
	} {
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		got := e.Client.Do(r.method, r.path, body, nil)
		require.Equal(t, 400, got.Status, "%s", got.Body)
		require.Contains(t, string(got.Body), "UNSUPPORTED-RISK-ASSESSMENT")
		require.Contains(t, string(got.Body), "KYT is not configured")
	}
}
