package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	et "github.com/travelrule/enclave/internal/enclavetest"
)

// TestHostileInputsAreRefusedCleanly drives the real router over real PostgreSQL with inputs
// that Go accepts and PostgreSQL does not (issue 13): each is a 4xx with a {code,message} body
// naming the field at fault, and nothing is written.
func TestHostileInputsAreRefusedCleanly(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	urn := "urn:uuid:" + v
	count := func() (n int) {
		require.NoError(t, e.DB.Get(&n, `SELECT (SELECT count(*) FROM verifications) + (SELECT count(*) FROM kyt_results)
			+ (SELECT count(*) FROM callbacks) + (SELECT count(*) FROM verifications WHERE tx_hash IS NOT NULL)`))
		return n
	}
	before := count()
	for _, c := range []struct{ name, method, path, body, field string }{
		{"UrnRequestID", "GET", "/v1/risk-assessment/chainalysis-kyt/" + urn, "", "requestId"},
		{"UrnVerificationFilter", "GET", "/v1/risk-assessment/chainalysis-kyt?verificationUuid=" + urn, "", "verificationUuid"},
		{"UrnCallbackFilter", "GET", "/v1/callbacks?requestId=" + urn, "", "requestId"},
		{"UrnRedeliver", "POST", "/v1/callbacks/" + urn + "/redeliver", "", "id"},
		{"UrnVerification", "GET", "/v1/verifications/" + urn, "", "verificationUuid"},
		{"BracedAssess", "POST", "/v1/risk-assessment/chainalysis-kyt", `{"verificationUuid":"{` + v + `}"}`, "verificationUuid"},
		{"BareHexTxReport", "POST", "/v1/verifications/tx", `{"verificationUuid":"` + strings.ReplaceAll(v, "-", "") + `","txHash":"0xab"}`, "verificationUuid"},
		{"OffsetBeyond1559", "GET", "/v1/verifications?fromDate=2024-01-01T00:00:00%2B16:00", "", "fromDate"},
		{"NegativeOffset", "GET", "/v1/risk-assessment/chainalysis-kyt?toDate=2024-01-01T00:00:00-16:00", "", "toDate"},
		{"Offset24", "GET", "/v1/verifications?toDate=2024-01-01T00:00:00%2B24:00", "", "toDate"},
		{"YearZero", "GET", "/v1/verifications?fromDate=0000-01-01", "", "fromDate"},
		{"VoutPast2To31", "POST", "/v1/verifications/tx", `{"verificationUuid":"` + v + `","txHash":"0xab","vout":2147483648}`, "vout"},
		{"NulQuery", "GET", "/v1/verifications?txHash=%00", "", "txHash"},
		{"NotUTF8Query", "GET", "/v1/verifications?txHash=%FF", "", "txHash"},
		{"NulTxHash", "POST", "/v1/verifications/tx", `{"verificationUuid":"` + v + `","txHash":"\u0000"}`, "txHash"},
		{"NulVaspID", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2\u00000"`, `"amount":"1"`, `"0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"`, ""), "beneficiaryVaspId"},
		{"NulTradeCurrency", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2"`, `"amount":"1","tradeCurrency":"U\u0000SD"`, `"0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"`, ""), "assetInfo.tradeCurrency"},
		{"NulAccountNumber", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2"`, `"amount":"1"`, `"0x00\u0000"`, ""), "payload.ivms101.beneficiary.accountNumber[0]"},
		{"LoneSurrogate", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2"`, `"amount":"1"`, `"0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"`, `,"note":"\ud800"`), "payload.ivms101.note"},
		{"HugeNumber", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2"`, `"amount":"1"`, `"0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"`, `,"n":1e1000000`), "payload.ivms101.n"},
		{"RawFF", "POST", "/v1/verifications", rawVerification(`"beneficiaryVaspId":"2"`, `"amount":"1"`, `"0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"`, ",\"name\":\"\xff\""), "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var body []byte
			if c.body != "" {
				body = []byte(c.body)
			}
			r := e.Client.Do(c.method, c.path, body, nil)
			require.GreaterOrEqual(t, r.Status, 400, "%s", r.Body)
			require.Less(t, r.Status, 500, "%s", r.Body)
			var eb struct{ Code, Message string }
			require.NoError(t, json.Unmarshal(r.Body, &eb), "%s", r.Body)
			require.NotEmpty(t, eb.Code)
			require.Contains(t, eb.Message, c.field, "the message names the field")
		})
	}
	require.Equal(t, before, count(), "nothing was written")
}

// rawVerification writes a POST /v1/verifications body from raw JSON pieces.
func rawVerification(vasp, asset, beneficiaryAddress, extra string) string {
	return `{` + vasp + `,"assetInfo":{"symbol":"ETH",` + asset + `},"payload":{"ivms101":{"beneficiary":{"accountNumber":[` +
		beneficiaryAddress + `]}` + extra + `}}}`
}

// TestHostileVaspIDsNeverReachChainalysis: a VASP id that would move a KYT call to another
// path ("..", ".", escaped or not, or holding '/', '?', '#', '%') is refused where it enters —
// the counterparty route's path, a verification's beneficiaryVaspId — and Chainalysis hears
// nothing.
func TestHostileVaspIDsNeverReachChainalysis(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true})
	for _, id := range []string{"..", ".", "%2e%2e", "%2E.", ".%2e", "%2e", "a%3Fb", "a%23b", "a%25b", "a%20b", strings.Repeat("7", 65)} {
		r := e.Client.Do("GET", "/v1/counterparties/"+id+"/chainalysis-kyt", nil, nil)
		require.Equal(t, 400, r.Status, "%s: %s", id, r.Body)
		require.Contains(t, decodeAs[apiError](t, r.Body).Message, "vaspId", id)
	}
	for _, id := range []string{"..", ".", "a/b", "a?b", "a#b", "a%b", "a b"} {
		body := et.VerificationBody("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
		body["beneficiaryVaspId"] = id
		r := e.Client.Do("POST", "/v1/verifications", mustJSON(t, body), nil)
		require.Equal(t, 400, r.Status, "%q: %s", id, r.Body)
		require.Contains(t, decodeAs[apiError](t, r.Body).Message, "beneficiaryVaspId", id)
	}
	require.Empty(t, e.Sim.Requests(), "no call reached Chainalysis")
}
