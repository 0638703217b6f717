package exchange_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/verification"
)

// Wallets the beneficiary VASP's Verify Account API answers in its own way.
const (
	hangingAddr = "0x00000000000000000000000000000000000000aa" // it never answers
	garbageAddr = "0x00000000000000000000000000000000000000bb" // it answers something unusable
	slowAddr    = "0x00000000000000000000000000000000000000cc" // it answers VERIFIED after 200 ms
)

// accountBody is an account check with us as originator, of address, naming the beneficiary
// name (none when empty).
func accountBody(vasp, address, name string) map[string]any {
	b := map[string]any{"accountNumber": []string{address}}
	if name != "" {
		b["beneficiaryPersons"] = []any{person(name)}
	}
	return map[string]any{"beneficiaryVaspId": vasp, "keyType": "PerVasp", "symbol": "ETH", "network": "ETHEREUM",
		"payload": map[string]any{"version": "1.0", "ivms101": map[string]any{"beneficiary": b}}}
}

// accountVASP is the beneficiary VASP's Verify Account API: its customer book has one wallet
// and name; "denied-<i>" wallets are DENIED with the i-th reason.
func accountVASP(body []byte) (int, any) {
	var q struct {
		OriginatingVaspID string `json:"originatingVaspId"`
		Symbol            string `json:"symbol"`
		IVMS101           struct {
			Beneficiary struct {
				BeneficiaryPersons json.RawMessage `json:"beneficiaryPersons"`
				AccountNumber      []string        `json:"accountNumber"`
			} `json:"beneficiary"`
		} `json:"ivms101"`
	}
	if json.Unmarshal(body, &q) != nil || len(q.IVMS101.Beneficiary.AccountNumber) != 1 || q.Symbol != "ETH" ||
		q.OriginatingVaspID != enclavetest.OurVasp {
		return 400, map[string]string{"code": "BAD-REQUEST"}
	}
	addr := q.IVMS101.Beneficiary.AccountNumber[0]
	i, denied := -1, strings.HasPrefix(addr, "denied-")
	if denied {
		fmt.Sscanf(addr, "denied-%d", &i) //nolint:errcheck // i stays -1
	}
	switch {
	case addr == beneficiaryAddr && strings.Contains(string(q.IVMS101.Beneficiary.BeneficiaryPersons), beneficiaryName):
		return 200, map[string]any{"accountVerificationResult": "VERIFIED", "reason": "OK", "message": ""}
	case addr == beneficiaryAddr:
		return 200, map[string]any{"result": "DENIED", "reason": "MISMATCHED-NAME", "message": "the name does not match"}
	case addr == hangingAddr:
		return 0, nil
	case addr == garbageAddr:
		return 200, map[string]any{"accountVerificationResult": "MAYBE"}
	case addr == slowAddr:
		time.Sleep(200 * time.Millisecond)
		return 200, map[string]any{"accountVerificationResult": "VERIFIED"}
	case denied && i >= 0 && i < len(verification.DeniedReasons):
		return 200, map[string]any{"accountVerificationResult": "DENIED", "reason": verification.DeniedReasons[i], "message": "denied " + fmt.Sprint(i)}
	}
	return 200, map[string]any{"accountVerificationResult": "DENIED", "reason": "UNKNOWN-ADDRESS", "message": ""}
}

func checkAccount(t *testing.T, e *enclavetest.Enclave, body map[string]any) exchange.AccountResult {
	t.Helper()
	st, b := post(t, e, "/v1/verifications/account", body)
	require.Equal(t, 200, st, b)
	var r exchange.AccountResult
	require.NoError(t, json.Unmarshal([]byte(b), &r))
	return r
}

// TestAccountCheck: the beneficiary VASP's answers pass through verbatim (VERIFIED, every DENIED
// reason with its message); a Verify Account API that hangs or answers garbage is a bounded
// ERROR; a VASP without one answers UNSUPPORTED; bad requests and unknown VASPs are 400s; 200
// checks at once with a VASP taking 200 ms are all answered; no name is kept or logged.
func TestAccountCheck(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) {
		o.VerifyAccount = i == 1
		if i == 1 {
			o.Config = func(c *config.Config) { c.VASPAPITimeout = 3 * time.Second }
		}
	})
	theirs.Receiver.VerifyAccount(accountVASP)

	r := checkAccount(t, ours, accountBody(enclavetest.TheirVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, exchange.AccountResult{AccountVerificationResult: "VERIFIED", Reason: "OK"}, r)
	asked := theirs.Receiver.APIAsked()
	require.Len(t, asked, 1)
	require.NoError(t, asked[0].Err, "Verify Account is signed and authorised like a callback")
	require.Contains(t, string(asked[0].Body), beneficiaryName, "the name reaches the beneficiary VASP")
	require.Contains(t, string(asked[0].Body), `"beneficiaryVaspId":"`+enclavetest.TheirVasp+`"`)

	r = checkAccount(t, ours, accountBody(enclavetest.TheirVasp, beneficiaryAddr, "Someone Else"))
	require.Equal(t, exchange.AccountResult{AccountVerificationResult: "DENIED", Reason: "MISMATCHED-NAME", Message: "the name does not match"}, r)
	r = checkAccount(t, ours, accountBody(enclavetest.TheirVasp, "0x1111111111111111111111111111111111111111", ""))
	require.Equal(t, "UNKNOWN-ADDRESS", r.Reason)
	for i, reason := range verification.DeniedReasons {
		r := checkAccount(t, ours, accountBody(enclavetest.TheirVasp, fmt.Sprintf("denied-%d", i), ""))
		require.Equal(t, exchange.AccountResult{AccountVerificationResult: "DENIED", Reason: reason, Message: fmt.Sprintf("denied %d", i)}, r)
	}

	r = checkAccount(t, ours, accountBody(enclavetest.TheirVasp, hangingAddr, beneficiaryName))
	require.Equal(t, "ERROR", r.AccountVerificationResult)
	require.Equal(t, "REQUEST-TIMEOUT", r.Reason, r.Message)
	r = checkAccount(t, ours, accountBody(enclavetest.TheirVasp, garbageAddr, beneficiaryName))
	require.Equal(t, "ERROR", r.AccountVerificationResult)
	require.Equal(t, "UNDEFINED-ERROR", r.Reason, r.Message)
	require.Contains(t, theirs.Logs.String(), "an answer the enclave cannot use")

	// Our VASP has no Verify Account API.
	r = checkAccount(t, theirs, accountBody(enclavetest.OurVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, exchange.AccountResult{AccountVerificationResult: "ERROR", Reason: "UNSUPPORTED",
		Message: "the beneficiary VASP does not offer account verification"}, r)

	for _, vasp := range []string{"99999", enclavetest.OurVasp} {
		st, b := post(t, ours, "/v1/verifications/account", accountBody(vasp, beneficiaryAddr, beneficiaryName))
		require.Equal(t, 400, st, b)
		require.Contains(t, b, `"code":"UNKNOWN-VASP"`)
	}
	bad := accountBody(enclavetest.TheirVasp, beneficiaryAddr, "")
	bad["symbol"] = ""
	bad["payload"].(map[string]any)["ivms101"].(map[string]any)["beneficiary"].(map[string]any)["accountNumber"] = []string{"a", "b"}
	st, b := post(t, ours, "/v1/verifications/account", bad)
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "symbol")
	require.Contains(t, b, "payload.ivms101.beneficiary.accountNumber")
	st, b = post(t, ours, "/v1/verifications/account", map[string]any{"beneficiaryVaspId": enclavetest.TheirVasp, "symbol": "ETH"})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "payload.ivms101")
	peer := ours.Peer("/peer/v1/verifications/account", mustJSON(t, accountBody(enclavetest.TheirVasp, beneficiaryAddr, "")))
	require.Equal(t, 400, peer.Status, "a check meant for another VASP: %s", peer.Body)

	// 200 at once, the VASP taking 200 ms each: every one answered, in its bound (on a machine
	// too loaded to call the VASP within 3 s, REQUEST-TIMEOUT is that bound's answer).
	var wg sync.WaitGroup
	var verified, late atomic.Int32
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch r := checkAccount(t, ours, accountBody(enclavetest.TheirVasp, slowAddr, "")); r.Reason {
			case "OK":
				verified.Add(1)
			case "REQUEST-TIMEOUT":
				late.Add(1)
			default:
				t.Errorf("answered %+v", r)
			}
		}()
	}
	wg.Wait()
	require.EqualValues(t, 200, verified.Load()+late.Load())
	t.Logf("200 account checks at once: %d VERIFIED, %d REQUEST-TIMEOUT", verified.Load(), late.Load())

	metrics := string(ours.Client.Do("GET", "/metrics", nil, nil).Body)
	require.Contains(t, metrics, fmt.Sprintf(`enclave_account_checks_total{reason="OK",result="VERIFIED",role="ORIGINATOR"} %d`, 1+verified.Load()))
	require.Contains(t, metrics, fmt.Sprintf(`enclave_account_checks_total{reason="REQUEST-TIMEOUT",result="ERROR",role="ORIGINATOR"} %d`, 1+late.Load()))
	require.Contains(t, string(theirs.Client.Do("GET", "/metrics", nil, nil).Body),
		`enclave_account_checks_total{reason="MISMATCHED-NAME",result="DENIED",role="BENEFICIARY"} 2`)

	for _, e := range []*enclavetest.Enclave{ours, theirs} {
		noTrace(t, e, beneficiaryName)
	}
}

// noTrace fails if any row of any table of e's database, or any line of its logs, holds s.
func noTrace(t *testing.T, e *enclavetest.Enclave, s string) {
	t.Helper()
	var tables []string
	require.NoError(t, e.DB.Select(&tables, `SELECT quote_ident(table_name) FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`))
	require.NotEmpty(t, tables)
	for _, table := range tables {
		var rows []string
		require.NoError(t, e.DB.Select(&rows, `SELECT row_to_json(t)::text FROM `+table+` t`))
		for _, r := range rows {
			require.NotContains(t, r, s, table)
		}
	}
	require.NotContains(t, e.Logs.String(), s)
}

// badCounterparty is a counterparty's enclave that misbehaves as mode says: "hang" never
// answers, "garbage" answers 200 with something unusable, "error" answers 400 with an error.
func badCounterparty(t *testing.T, mode *atomic.Value) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // read, so that a caller that gives up ends the request
		switch mode.Load().(string) {
		case "hang":
			<-r.Context().Done()
		case "garbage":
			w.Write([]byte(`{"accountVerificationResult": "VERIFIED", "reason": "BECAUSE", "transactionStatus": "SOON"}`)) //nolint:errcheck
		default:
			w.WriteHeader(400)
			w.Write([]byte(`{"code": "BAD-REQUEST", "message": "no"}`)) //nolint:errcheck
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestChecksBoundedWhenTheCounterpartyFails: a counterparty enclave that hangs, is gone,
// answers garbage or an error gives a bounded ERROR to an account check and a 424 to a tx
// inquiry, never a hang or a 5xx.
func TestChecksBoundedWhenTheCounterpartyFails(t *testing.T) {
	t.Parallel()
	var mode atomic.Value
	mode.Store("hang")
	bad := badCounterparty(t, &mode)
	const gone = "http://127.0.0.1:1" // nothing listens there
	const goneVasp = "30000000000000000003"
	e := enclavetest.Start(t, enclavetest.Options{Config: func(c *config.Config) {
		c.VASPAPITimeout = 300 * time.Millisecond
		c.Peers[0].URL = bad.URL
		c.Peers = append(c.Peers, config.Peer{VaspID: goneVasp, Name: "Gone VASP", URL: gone, Secret: enclavetest.PeerSecret})
	}})
	id := "6a1f0a52-3f35-4cf2-9d6b-6f3f6c0d2a10"
	e.ReceiveIncoming(id, "ETH", "", "1", beneficiaryAddr)
	inquire := func() (int, string) {
		return post(t, e, "/v1/verifications/tx/inquiry", map[string]any{"verificationUuid": id})
	}

	r := checkAccount(t, e, accountBody(enclavetest.TheirVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, "ERROR", r.AccountVerificationResult)
	require.Equal(t, "REQUEST-TIMEOUT", r.Reason, r.Message)
	st, b := inquire()
	require.Equal(t, 424, st, b)
	require.Contains(t, b, `"code":"REQUEST-TIMEOUT"`)

	r = checkAccount(t, e, accountBody(goneVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, "REQUEST-TIMEOUT", r.Reason, "a counterparty that is gone: %s", r.Message)

	mode.Store("garbage")
	r = checkAccount(t, e, accountBody(enclavetest.TheirVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, "UNDEFINED-ERROR", r.Reason, r.Message)
	require.Contains(t, r.Message, "cannot use")
	st, b = inquire()
	require.Equal(t, 424, st, b)
	require.Contains(t, b, `"code":"COUNTERPARTY-ERROR"`)

	mode.Store("error")
	r = checkAccount(t, e, accountBody(enclavetest.TheirVasp, beneficiaryAddr, beneficiaryName))
	require.Equal(t, "UNDEFINED-ERROR", r.Reason, r.Message)
	require.Contains(t, r.Message, "400 BAD-REQUEST: no")
	st, b = inquire()
	require.Equal(t, 424, st, b)
	require.Contains(t, b, "400 BAD-REQUEST: no")
	noTrace(t, e, beneficiaryName)
}

func inquire(t *testing.T, e *enclavetest.Enclave, id string) exchange.TxStatus {
	t.Helper()
	st, b := post(t, e, "/v1/verifications/tx/inquiry", map[string]any{"verificationUuid": id})
	require.Equal(t, 200, st, b)
	var s exchange.TxStatus
	require.NoError(t, json.Unmarshal([]byte(b), &s))
	require.Equal(t, id, s.VerificationUUID)
	return s
}

// TestTxInquiry: the beneficiary asks the originator, which answers from its VASP's
// Transaction Status API, or from its tx and error reports without one (or when it fails);
// only the beneficiary asks, and only the beneficiary is answered.
func TestTxInquiry(t *testing.T) {
	t.Parallel()
	ours, theirs := enclavetest.StartPair(t, func(i int, o *enclavetest.Options) { o.TxStatus = i == 0 })
	var failing atomic.Bool
	ours.Receiver.TxStatus(func(body []byte) (int, any) {
		var q struct{ VerificationUUID string }
		json.Unmarshal(body, &q) //nolint:errcheck
		if failing.Load() {
			return 503, map[string]string{"code": "DOWN"}
		}
		return 200, map[string]any{"verificationUuid": q.VerificationUUID, "transactionStatus": "CONFIRMED", "txHash": enclavetest.TxHash(q.VerificationUUID)}
	})
	received := func(e *enclavetest.Enclave, id string) func() bool {
		return func() bool { return e.Client.Do("GET", "/v1/verifications/"+id, nil, nil).Status == 200 }
	}

	// Ours is the originator, with a Transaction Status API.
	id := enclavetest.Create(t, ours, body("1", beneficiaryAddr, beneficiaryName))
	require.Eventually(t, received(theirs, id), wait, 20*time.Millisecond)
	s := inquire(t, theirs, id)
	require.Equal(t, "CONFIRMED", s.TransactionStatus)
	require.Equal(t, enclavetest.TxHash(id), s.TxHash)
	asked := ours.Receiver.APIAsked()
	require.Len(t, asked, 1)
	require.NoError(t, asked[0].Err, "Transaction Status is signed and authorised like a callback")
	require.JSONEq(t, `{"verificationUuid":"`+id+`"}`, string(asked[0].Body))
	failing.Store(true)
	require.Equal(t, "PENDING", inquire(t, theirs, id).TransactionStatus, "the stored answer when the API fails")
	require.Contains(t, ours.Logs.String(), "Transaction Status API failed")

	// Theirs is the originator, without one: the stored tx report and error report answer.
	toOurs := json.RawMessage(strings.Replace(string(body("1", beneficiaryAddr, beneficiaryName)), enclavetest.TheirVasp, enclavetest.OurVasp, 1))
	sent := enclavetest.Create(t, theirs, toOurs)
	cancelled := enclavetest.Create(t, theirs, toOurs)
	require.Eventually(t, received(ours, sent), wait, 20*time.Millisecond)
	require.Eventually(t, received(ours, cancelled), wait, 20*time.Millisecond)
	require.Equal(t, exchange.TxStatus{VerificationUUID: sent, TransactionStatus: "PENDING"}, inquire(t, ours, sent))
	theirs.ReportTx(sent, enclavetest.TxHash(sent))
	s = inquire(t, ours, sent)
	require.Equal(t, "PROCESSING", s.TransactionStatus)
	require.Equal(t, enclavetest.TxHash(sent), s.TxHash)
	st, b := post(t, theirs, "/v1/verifications/error", map[string]any{"verificationUuid": cancelled, "result": "ERROR", "reason": "USER-CANCELED"})
	require.Equal(t, 200, st, b)
	require.Equal(t, "CANCELED", inquire(t, ours, cancelled).TransactionStatus)
	require.Len(t, ours.Receiver.APIAsked(), 2, "ours' API is asked about ours' verifications only")

	st, b = post(t, ours, "/v1/verifications/tx/inquiry", map[string]any{"verificationUuid": id})
	require.Equal(t, 400, st, "only the beneficiary asks: %s", b)
	require.Contains(t, b, `"code":"BAD-REQUEST"`)
	st, b = post(t, ours, "/v1/verifications/tx/inquiry", map[string]any{})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "MISSING-VERIFICATION-UUID")
	st, b = post(t, ours, "/v1/verifications/tx/inquiry", map[string]any{"verificationUuid": "8a7d8f3c-07a4-4a51-9d7e-0d7a3f1c2b11"})
	require.Equal(t, 400, st, b)
	require.Contains(t, b, "NOT-FOUND-VERIFICATION")
	// Theirs asks ours, through the peer route, about a verification theirs sent: not ours to answer.
	r := ours.Peer("/peer/v1/verifications/tx/inquiry", mustJSON(t, map[string]any{"verificationUuid": sent}))
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "NOT-FOUND-VERIFICATION")

	require.Contains(t, string(theirs.Client.Do("GET", "/metrics", nil, nil).Body), `enclave_tx_inquiries_total{outcome="CONFIRMED",role="BENEFICIARY"} 1`)
	require.Contains(t, string(theirs.Client.Do("GET", "/metrics", nil, nil).Body), `enclave_tx_inquiries_total{outcome="CANCELED",role="ORIGINATOR"} 1`)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
