package exchange_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/verification"
	"github.com/travelrule/enclave/webhook"
)

func TestMain(m *testing.M) { enclavetest.Main(m, runChild) }

const wait = 20 * time.Second

// Names only these tests use: no raw row of either database may contain them.
const (
	originatorName  = "Zephyrine Quaxworth"
	beneficiaryName = "Bartholomew Vexley-Okonkwo"
)

// beneficiaryAddr is the wallet the beneficiary VASP knows.
const beneficiaryAddr = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0a"

func person(name string) map[string]any {
	return map[string]any{"naturalPerson": map[string]any{"name": []any{map[string]any{"nameIdentifier": []any{
		map[string]any{"primaryIdentifier": name, "nameIdentifierType": "LEGL"}}}}}}
}

// body is a verification from us to them of amount ETH, to address, naming the beneficiary.
func body(amount, address, name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"beneficiaryVaspId":       enclavetest.TheirVasp,
		"requiredBeneficiaryInfo": "ACCOUNT_NUMBER,NATURAL_PERSON_NAME",
		"assetInfo":               map[string]any{"symbol": "ETH", "amount": amount, "isExceedingThreshold": true},
		"payload": map[string]any{"version": "1.0", "ivms101": map[string]any{
			"originator":  map[string]any{"originatorPersons": []any{person(originatorName)}, "accountNumber": []string{"0x3d21a92285bf17cbdde5f77531b8b58ac400288a"}},
			"beneficiary": map[string]any{"beneficiaryPersons": []any{person(name)}, "accountNumber": []string{address}},
		}},
	})
	return b
}

func post(t *testing.T, e *enclavetest.Enclave, path string, v any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(v)
	r := e.Client.Do("POST", path, b, nil)
	return r.Status, string(r.Body)
}

func get(t *testing.T, e *enclavetest.Enclave, id string) verification.View {
	t.Helper()
	r := e.Client.Do("GET", "/v1/verifications/"+id, nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var v verification.View
	require.NoError(t, json.Unmarshal(r.Body, &v))
	return v
}

// beneficiaryVASP answers Verify User from a customer book: the known wallet and name →
// VERIFIED with the beneficiary's name; the amount picks the other answers.
func beneficiaryVASP(req enclavetest.VerifyUserRequest) (int, any) {
	var asset struct{ Amount string }
	json.Unmarshal(req.AssetInfo, &asset) //nolint:errcheck
	var ivms struct {
		Beneficiary struct{ AccountNumber []string } `json:"beneficiary"`
	}
	json.Unmarshal(req.IVMS101, &ivms) //nolint:errcheck
	ok := map[string]any{"beneficiaryPersons": []any{person(beneficiaryName)}, "accountNumber": ivms.Beneficiary.AccountNumber}
	switch {
	case strings.HasPrefix(asset.Amount, "2."): // DENIED, the reason indexed by the fraction
		var i int
		fmt.Sscanf(asset.Amount, "2.%d", &i) //nolint:errcheck
		return 200, map[string]any{"verificationResult": "DENIED", "reason": verification.DeniedReasons[i], "message": "denied " + fmt.Sprint(i)}
	case asset.Amount == "3":
		return 200, map[string]any{"result": "UNKNOWN", "reason": "UNKNOWN-ADDRESS"}
	case asset.Amount == "4": // the VASP returns another wallet
		ok["accountNumber"] = []string{"0x0000000000000000000000000000000000000001"}
		return 200, map[string]any{"result": "VERIFIED", "reason": "OK", "ivms101": map[string]any{"beneficiary": ok}}
	case asset.Amount == "5": // a person reviews it
		return 200, map[string]any{"result": "PENDING"}
	case asset.Amount == "6": // an answer the enclave cannot use, then a good one
		return 200, map[string]any{"result": "MAYBE"}
	}
	// The same wallet in its checksum case: the same address.
	ok["accountNumber"] = []string{"0x" + strings.ToUpper(strings.TrimPrefix(ivms.Beneficiary.AccountNumber[0], "0x"))}
	return 200, map[string]any{"result": "VERIFIED", "reason": "OK", "message": "", "ivms101": map[string]any{"beneficiary": ok}}
}

// TestVerifiedAndTxReport is the whole happy path between two enclaves: the beneficiary's VASP
// verifies, the originator learns it with the returned beneficiary data, reports its tx, the
// beneficiary's VASP gets TX_REPORT and screens the deposit; no raw row holds a name.
func TestVerifiedAndTxReport(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) { o.VerifyUser = i == 1 })
	theirs.Receiver.VerifyUser(beneficiaryVASP)

	id := enclavetest.Create(t, ours, body("1.5", beneficiaryAddr, beneficiaryName))
	got := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait)
	require.Equal(t, "VERIFIED", got.Verification.VerificationResult)
	require.Equal(t, "VERIFIED", got.Verification.Result)
	require.Equal(t, "OK", *got.Verification.Reason)
	require.NotNil(t, got.Verification.IVMS101, "the beneficiary data the VASP returned")
	require.Contains(t, string(got.Verification.IVMS101.Beneficiary), beneficiaryName)

	asked := theirs.Receiver.Asked()
	require.Len(t, asked, 1)
	require.NoError(t, asked[0].Err, "Verify User is signed and authorised like a callback")
	require.Equal(t, id, asked[0].VerificationUUID)
	require.Equal(t, enclavetest.OurVasp, asked[0].OriginatingVaspID)
	require.Equal(t, "ACCOUNT_NUMBER,NATURAL_PERSON_NAME", asked[0].RequiredBeneficiaryInfo)
	require.Contains(t, string(asked[0].IVMS101), originatorName, "the originator's IVMS101 reaches the beneficiary VASP")

	v := get(t, ours, id)
	require.Equal(t, "VERIFIED", v.Result)
	require.NotNil(t, v.ResultAt)
	require.NotNil(t, v.ResultIVMS101)
	require.Contains(t, string(v.ResultIVMS101.Beneficiary), beneficiaryName)
	list := ours.Client.Do("GET", "/v1/verifications?result=VERIFIED", nil, nil)
	require.Equal(t, 200, list.Status)
	require.Contains(t, string(list.Body), id)
	require.NotContains(t, string(list.Body), beneficiaryName, "lists leave the personal data out")
	require.Equal(t, "VERIFIED", get(t, theirs, id).Result, "the beneficiary keeps the answer it gave")

	hash := enclavetest.TxHash(id)
	ours.ReportTx(id, hash)
	tx := theirs.Receiver.WaitFor(t, webhook.TypeTxReport, id, wait)
	require.Equal(t, hash, tx.TxReport.TxHash)
	ours.ReportTx(id, hash) // the same report again: one TX_REPORT
	rid := theirs.Assess(id, "")
	k := theirs.Receiver.Terminal(t, rid, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "TRANSFER", k.APIType, "the beneficiary screens the deposit")
	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, id), 1)
	require.Len(t, theirs.Receiver.OfType(webhook.TypeTxReport, id), 1)

	msgs := ours.Client.Do("GET", "/v1/peer-messages?verificationUuid="+id, nil, nil)
	require.Equal(t, 200, msgs.Status)
	var page struct {
		Data []struct{ Kind, Status string }
	}
	require.NoError(t, json.Unmarshal(msgs.Body, &page))
	require.Len(t, page.Data, 2)
	for _, m := range page.Data {
		require.Equal(t, "DELIVERED", m.Status, m.Kind)
	}

	for _, e := range []*enclavetest.Enclave{ours, theirs} {
		for _, q := range []string{`SELECT row_to_json(v)::text FROM verifications v`, `SELECT row_to_json(c)::text FROM callbacks c`,
			`SELECT row_to_json(m)::text FROM peer_messages m`, `SELECT args::text FROM river_job`} {
			var rows []string
			require.NoError(t, e.DB.Select(&rows, q))
			for _, r := range rows {
				require.NotContains(t, r, originatorName, q)
				require.NotContains(t, r, beneficiaryName, q)
			}
		}
	}
}

// TestEveryAnswer: each DENIED reason passes through verbatim, UNKNOWN, a changed wallet is
// ERROR / BENEFICIARY-ACCOUNT-NOT-MATCHED (and the beneficiary is told), PENDING waits for the
// result route, and an answer the enclave cannot use is asked again.
func TestEveryAnswer(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) { o.VerifyUser = i == 1 })
	var unusable atomic.Int32
	theirs.Receiver.VerifyUser(func(req enclavetest.VerifyUserRequest) (int, any) {
		if strings.Contains(string(req.AssetInfo), `"6"`) && unusable.Add(1) > 2 {
			return 200, map[string]any{"result": "DENIED", "reason": "NOT-ALLOWED", "message": "user locked"}
		}
		return beneficiaryVASP(req)
	})
	denied := map[string]string{}
	for i, reason := range verification.DeniedReasons {
		denied[enclavetest.Create(t, ours, body(fmt.Sprintf("2.%d", i), beneficiaryAddr, beneficiaryName))] = reason
	}
	unknown := enclavetest.Create(t, ours, body("3", beneficiaryAddr, beneficiaryName))
	moved := enclavetest.Create(t, ours, body("4", beneficiaryAddr, beneficiaryName))
	pending := enclavetest.Create(t, ours, body("5", beneficiaryAddr, beneficiaryName))
	retried := enclavetest.Create(t, ours, body("6", beneficiaryAddr, beneficiaryName))

	for id, reason := range denied {
		got := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait).Verification
		require.Equal(t, "DENIED", got.Result)
		require.Equal(t, reason, *got.Reason)
		require.Equal(t, reason, *get(t, ours, id).Reason)
	}
	require.Equal(t, "UNKNOWN", ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, unknown, wait).Verification.Result)

	m := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, moved, wait).Verification
	require.Equal(t, "ERROR", m.Result)
	require.Equal(t, "BENEFICIARY-ACCOUNT-NOT-MATCHED", *m.Reason)
	require.Nil(t, m.IVMS101, "the changed beneficiary data is not passed on")
	er := theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, moved, wait).ErrorReport
	require.Equal(t, "BENEFICIARY-ACCOUNT-NOT-MATCHED", er.Reason)

	r := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, retried, wait).Verification
	require.Equal(t, "NOT-ALLOWED", *r.Reason)
	require.GreaterOrEqual(t, unusable.Load(), int32(3), "an unusable answer is asked again")
	require.Contains(t, theirs.Logs.String(), "an answer the enclave cannot use")

	// PENDING: nothing is sent until the VASP answers through the result route.
	require.Eventually(t, func() bool { return len(theirs.Receiver.Asked()) >= 14 }, wait, 20*time.Millisecond)
	require.Equal(t, "PENDING", get(t, theirs, pending).Result)
	require.Empty(t, ours.Receiver.OfType(webhook.TypeVerificationResult, pending))
	st, b := post(t, theirs, "/v1/verifications/"+pending+"/result", map[string]any{"result": "DENIED", "reason": "MISMATCHED-NAME"})
	require.Equal(t, 200, st, b)
	require.Equal(t, "MISMATCHED-NAME", *ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, pending, wait).Verification.Reason)
	st, b = post(t, theirs, "/v1/verifications/"+pending+"/result", map[string]any{"result": "DENIED", "reason": "MISMATCHED-NAME"})
	require.Equal(t, 200, st, "the same answer again is harmless: %s", b)
	st, b = post(t, theirs, "/v1/verifications/"+pending+"/result", map[string]any{"result": "VERIFIED"})
	require.Equal(t, 409, st, b)
	require.Contains(t, b, `"code":"CONFLICT"`)
	st, b = post(t, ours, "/v1/verifications/"+pending+"/result", map[string]any{"result": "VERIFIED"})
	require.Equal(t, 400, st, "only the beneficiary answers: %s", b)
}

// TestNoVerifyUserAPI: without ENCLAVE_VERIFY_USER_URL the beneficiary's VASP is told by a
// VERIFICATION_REQUEST callback and answers through the result route; bad answers are 400s
// naming every field.
func TestNoVerifyUserAPI(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, nil)
	id := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	req := theirs.Receiver.WaitFor(t, webhook.TypeVerificationRequest, id, wait)
	require.Equal(t, "BENEFICIARY", req.Request.Role)
	require.Equal(t, "PENDING", req.Request.Result)
	require.Equal(t, beneficiaryAddr, req.Request.BeneficiaryAddress)
	require.NotContains(t, string(req.Body), originatorName, "no personal data in the request callback")

	st, b := post(t, theirs, "/v1/verifications/"+id+"/result", map[string]any{"result": "DENIED", "reason": "SOMETHING"})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "reason")
	st, b = post(t, theirs, "/v1/verifications/"+id+"/result", map[string]any{"result": "MAYBE", "message": strings.Repeat("x", 2000)})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "result")
	require.Contains(t, b, "message")
	st, b = post(t, theirs, "/v1/verifications/"+id+"/result", map[string]any{"verificationResult": "VERIFIED",
		"ivms101": map[string]any{"beneficiary": map[string]any{"beneficiaryPersons": []any{person(beneficiaryName)}, "accountNumber": []string{beneficiaryAddr}}}})
	require.Equal(t, 200, st, b)
	got := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait).Verification
	require.Equal(t, "VERIFIED", got.Result)
	require.Contains(t, string(got.IVMS101.Beneficiary), beneficiaryName)

	st, b = post(t, ours, "/v1/verifications", json.RawMessage(strings.Replace(string(body("1", beneficiaryAddr, "x")), enclavetest.TheirVasp, "99999", 1)))
	require.Equal(t, 400, st, b)
	require.Contains(t, b, `"code":"UNKNOWN-VASP"`)
	require.Contains(t, b, "99999")
}

// TestErrorReportsBothWays: the originator cancels a verification still PENDING (both sides
// stop waiting), the beneficiary cancels a VERIFIED one; each side's VASP gets one ERROR_REPORT.
func TestErrorReportsBothWays(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) { o.VerifyUser = i == 1 })
	theirs.Receiver.VerifyUser(beneficiaryVASP)

	pending := enclavetest.Create(t, ours, body("5", beneficiaryAddr, beneficiaryName))
	require.Eventually(t, func() bool { return len(theirs.Receiver.Asked()) == 1 }, wait, 20*time.Millisecond)
	cancel := map[string]any{"verificationUuid": pending, "result": "ERROR", "reason": "USER-CANCELED", "message": "the user cancelled"}
	st, b := post(t, ours, "/v1/verifications/error", cancel)
	require.Equal(t, 200, st, b)
	st, b = post(t, ours, "/v1/verifications/error", cancel)
	require.Equal(t, 200, st, "the same report again is harmless: %s", b)
	res := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, pending, wait).Verification
	require.Equal(t, "ERROR", res.Result)
	require.Equal(t, "USER-CANCELED", *res.Reason)
	er := theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, pending, wait).ErrorReport
	require.Equal(t, "USER-CANCELED", er.Reason)
	require.Equal(t, "the user cancelled", er.Message)
	v := get(t, theirs, pending)
	require.Equal(t, "ERROR", v.Result, "the beneficiary stops waiting too")
	require.Equal(t, "COUNTERPARTY", v.ErrorReport.From)
	st, b = post(t, theirs, "/v1/verifications/"+pending+"/result", map[string]any{"result": "VERIFIED"})
	require.Equal(t, 409, st, b)

	verified := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, verified, wait)
	st, b = post(t, theirs, "/v1/verifications/error", map[string]any{"verificationUuid": verified, "result": "VERIFIED", "reason": "BLACKLISTED"})
	require.Equal(t, 200, st, b)
	er = ours.Receiver.WaitFor(t, webhook.TypeErrorReport, verified, wait).ErrorReport
	require.Equal(t, "BLACKLISTED", er.Reason)
	require.Equal(t, "VERIFIED", get(t, ours, verified).Result, "a report after the result leaves it")
	st, b = post(t, ours, "/v1/verifications/error", map[string]any{"verificationUuid": verified, "result": "ERROR", "reason": "OTHER"})
	require.Equal(t, 409, st, "one error report a verification: %s", b)

	st, b = post(t, ours, "/v1/verifications/error", map[string]any{"result": "BAD", "message": strings.Repeat("m", 1001)})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "MISSING-VERIFICATION-UUID")
	st, b = post(t, ours, "/v1/verifications/error", map[string]any{"verificationUuid": verified, "result": "BAD", "message": strings.Repeat("m", 1001)})
	require.Equal(t, 400, st, b)
	for _, f := range []string{"result", "reason", "message"} {
		require.Contains(t, b, f)
	}
	time.Sleep(300 * time.Millisecond) // any duplicate would have arrived by now
	require.Len(t, theirs.Receiver.OfType(webhook.TypeErrorReport, pending), 1)
	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, pending), 1)
}

// TestTimeout: a beneficiary that never answers; the originator ends the verification in ERROR
// / REQUEST-TIMEOUT with one VERIFICATION_RESULT and tells the beneficiary; a late answer is
// refused with 409 and recorded as FAILED on the beneficiary's side.
func TestTimeout(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) {
		if i == 0 {
			o.Config = func(c *config.Config) { c.VerificationTimeout = 2 * time.Second }
		}
	})
	id := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	theirs.Receiver.WaitFor(t, webhook.TypeVerificationRequest, id, wait)
	res := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait).Verification
	require.Equal(t, "ERROR", res.Result)
	require.Equal(t, "REQUEST-TIMEOUT", *res.Reason)
	require.Equal(t, "REQUEST-TIMEOUT", theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, id, wait).ErrorReport.Reason)
	require.Equal(t, "ERROR", get(t, theirs, id).Result)

	// A beneficiary that answered before the error report reached it: its result is refused.
	late := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	theirs.Receiver.WaitFor(t, webhook.TypeVerificationRequest, late, wait)
	ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, late, wait)
	theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, late, wait)
	_, err := theirs.DB.Exec(`UPDATE verifications SET result = 'PENDING', error_result = NULL, error_reason = NULL, error_message = NULL,
		error_from = NULL, error_at = NULL WHERE uuid = $1`, late) // as if the error report were still on its way
	require.NoError(t, err)
	st, b := post(t, theirs, "/v1/verifications/"+late+"/result", map[string]any{"result": "VERIFIED"})
	require.Equal(t, 200, st, b)
	require.Eventually(t, func() bool {
		r := theirs.Client.Do("GET", "/v1/peer-messages?status=FAILED&kind=RESULT&verificationUuid="+late, nil, nil)
		return strings.Contains(string(r.Body), `"lastStatusCode":409`) && strings.Contains(string(r.Body), "CONFLICT")
	}, wait, 50*time.Millisecond)
	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, late), 1)
	require.Equal(t, "REQUEST-TIMEOUT", *get(t, ours, late).Reason)
}

// TestCounterpartyDownThenBack: messages to a counterparty that answers 503 for a while are
// retried and arrive in order once it is back; one that answers with a redirect is not
// followed and the verification ends in ERROR.
func TestCounterpartyDownThenBack(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	down.Store(true)
	var gate *httptest.Server
	var redirect *httptest.Server
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) {
		if i == 0 {
			gate = httptest.NewUnstartedServer(nil)
			redirect = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
			}))
			t.Cleanup(redirect.Close)
			o.Config = func(c *config.Config) {
				c.Peers[0].URL = "http://" + gate.Listener.Addr().String()
				c.Peers = append(c.Peers, config.Peer{VaspID: "30000000000000000003", Name: "Redirecting VASP", URL: redirect.URL,
					Secret: enclavetest.PeerSecret})
			}
		}
	})
	target, _ := url.Parse(theirs.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	gate.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	gate.Start()
	t.Cleanup(gate.Close)

	id := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	st, b := post(t, ours, "/v1/verifications/error", map[string]any{"verificationUuid": id, "result": "ERROR", "reason": "USER-CANCELED"})
	require.Equal(t, 200, st, b)
	require.Eventually(t, func() bool {
		r := ours.Client.Do("GET", "/v1/peer-messages?kind=VERIFICATION&verificationUuid="+id, nil, nil)
		return strings.Contains(string(r.Body), `"lastStatusCode":503`)
	}, wait, 50*time.Millisecond)
	time.Sleep(500 * time.Millisecond)
	down.Store(false)
	er := theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, id, wait).ErrorReport
	require.Equal(t, "USER-CANCELED", er.Reason, "the error report follows the verification it is about")
	require.Equal(t, "ERROR", get(t, theirs, id).Result)

	redirected := ours.Client.Do("POST", "/v1/verifications", []byte(strings.Replace(string(body("1", beneficiaryAddr, beneficiaryName)),
		enclavetest.TheirVasp, "30000000000000000003", 1)), nil)
	require.Equal(t, 200, redirected.Status, "%s", redirected.Body)
	var out struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(redirected.Body, &out))
	res := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, out.VerificationUUID, wait).Verification
	require.Equal(t, "ERROR", res.Result)
	require.Equal(t, "UNDEFINED-ERROR", *res.Reason)
	require.Contains(t, *res.Message, "redirect")
	r := ours.Client.Do("GET", "/v1/peer-messages?status=FAILED", nil, nil)
	require.Contains(t, string(r.Body), `"lastStatusCode":302`)
	var page struct{ Data []struct{ ID string } }
	require.NoError(t, json.Unmarshal(r.Body, &page))
	require.Len(t, page.Data, 1)
	rd := ours.Client.Do("POST", "/v1/peer-messages/"+page.Data[0].ID+"/redeliver", nil, nil)
	require.Equal(t, 400, rd.Status, "a verification message of a verification that has a result: %s", rd.Body)
}
