package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/openapitest"
)

// TestSeveralMistakesAreOneAnswer: a body with several mistakes, on every POST route that
// takes one (screening's has one field only), is one 400 BAD-REQUEST whose message and problems name every field at fault (issue
// 25), through the real router over real PostgreSQL; nothing is stored.
func TestSeveralMistakesAreOneAnswer(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	count := func() (n int) {
		require.NoError(t, e.DB.Get(&n, `SELECT (SELECT count(*) FROM verifications) + (SELECT count(*) FROM kyt_results)
			+ (SELECT count(*) FROM screening_results) + (SELECT count(*) FROM verifications WHERE tx_hash IS NOT NULL)`))
		return n
	}
	before := count()

	badVerification := func(peer bool) []byte {
		m := et.VerificationBody("ETH", "", "-1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
		delete(m, "beneficiaryVaspId")
		asset := m["assetInfo"].(map[string]any)
		asset["tradePrice"], asset["tradeISODateTime"], asset["network"] = "1,5", "yesterday", strings.Repeat("n", 100)
		m["payload"] = map[string]any{"ivms101": map[string]any{"beneficiary": map[string]any{"accountNumber": []string{}}}}
		if peer {
			m["verificationUuid"], m["originatingVaspId"] = "not-a-uuid", "a/b"
		}
		return mustJSON(t, m)
	}
	verificationFields := map[string]string{
		"beneficiaryVaspId": "required", "assetInfo.network": "max", "assetInfo.amount": "decimal",
		"assetInfo.tradePrice": "decimal0", "assetInfo.tradeISODateTime": "rfc3339",
		"payload.ivms101.beneficiary.accountNumber": "min",
	}
	peerFields := map[string]string{"verificationUuid": "uuid", "originatingVaspId": "vaspid"}
	for f, r := range verificationFields {
		peerFields[f] = r
	}
	txBody := []byte(`{"verificationUuid":"` + strings.ReplaceAll(v, "-", "") + `","txHash":"a b","vout":-1}`)
	txFields := map[string]string{"verificationUuid": "uuid", "txHash": "txhash", "vout": "min"}
	long := strings.Repeat("m", 1001)
	answer := `"result":"MAYBE","reason":"` + strings.Repeat("r", 65) + `","message":"` + long + `"`
	answerFields := map[string]string{"result": "oneof", "reason": "max", "message": "max"}
	errorReport := []byte(`{"verificationUuid":"abc","result":"NOPE","message":"` + long + `"}`)
	errorFields := map[string]string{"verificationUuid": "uuid", "result": "oneof", "reason": "required", "message": "max"}
	peerAnswerFields := map[string]string{"verificationUuid": "uuid"}
	for f, r := range answerFields {
		peerAnswerFields[f] = r
	}

	for _, c := range []struct {
		name, path string
		body       []byte
		peer       bool
		fields     map[string]string // JSON path → rule
	}{
		{"CreateVerification", "/v1/verifications", badVerification(false), false, verificationFields},
		{"ReportTx", "/v1/verifications/tx", txBody, false, txFields},
		{"AssessKYT", "/v1/risk-assessment/chainalysis-kyt",
			[]byte(`{"verificationUuid":"{` + v + `}","network":"` + strings.Repeat("n", 65) + `"}`), false,
			map[string]string{"verificationUuid": "uuid", "network": "max"}},
		{"Screen", "/v1/risk-assessment/chainalysis-address-screening", // its only field
			[]byte(`{"verificationUuid":"urn:uuid:` + v + `"}`), false, map[string]string{"verificationUuid": "uuid"}},
		{"Answer", "/v1/verifications/" + uuid.NewString() + "/result", []byte(`{` + answer + `}`), false, answerFields},
		{"ReportError", "/v1/verifications/error", errorReport, false, errorFields},
		{"PeerVerification", "/peer/v1/verifications", badVerification(true), true, peerFields},
		{"PeerResult", "/peer/v1/verifications/result", []byte(`{"verificationUuid":"abc",` + answer + `}`), true, peerAnswerFields},
		{"PeerError", "/peer/v1/verifications/error", errorReport, true, errorFields},
		{"PeerTxReport", "/peer/v1/verifications/tx",
			[]byte(`{"verificationUuid":"` + uuid.NewString() + `","txHash":"` + strings.Repeat("f", 201) + `","vout":2147483648}`), true,
			map[string]string{"txHash": "txhash", "vout": "max"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r openapitest.Response
			if c.peer {
				r = e.Peer(c.path, c.body)
			} else {
				r = e.Client.With(t).Do("POST", c.path, c.body, nil)
			}
			require.Equal(t, 400, r.Status, "%s", r.Body)
			var got struct {
				Code, Message string
				Problems      []struct{ Field, Rule string }
			}
			require.NoError(t, json.Unmarshal(r.Body, &got), "%s", r.Body)
			require.Equal(t, "BAD-REQUEST", got.Code)
			problems := map[string]string{}
			for _, p := range got.Problems {
				problems[p.Field] = p.Rule
			}
			require.Equal(t, c.fields, problems, "%s", r.Body)
			for field := range c.fields {
				require.Contains(t, got.Message, field+": ", "the message names %s", field)
			}
			require.Equal(t, len(c.fields), strings.Count(got.Message, "; ")+1, "one clause a field: %s", got.Message)
			require.Less(t, len(got.Message), 250*len(c.fields), "bad values quoted briefly")
		})
	}
	require.Equal(t, before, count(), "nothing was written")
}

// TestMissingVerificationUUIDComesFirst: whatever else is wrong, a body without verificationUuid
// is VerifyVASP's own answer, exactly.
func TestMissingVerificationUUIDComesFirst(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	const want = "{\"code\":\"MISSING-VERIFICATION-UUID\",\"message\":\"`verificationUuid` is required.\"}"
	for _, c := range []struct {
		path, body string
		peer       bool
	}{
		{"/v1/verifications/tx", `{"txHash":"a b","vout":-1}`, false},
		{"/v1/risk-assessment/chainalysis-kyt", `{"verificationUuid":"  ","network":"` + strings.Repeat("n", 65) + `"}`, false},
		{"/v1/risk-assessment/chainalysis-address-screening", `{}`, false},
		{"/peer/v1/verifications", `{"originatingVaspId":"a/b","assetInfo":{"amount":"0"}}`, true},
		{"/peer/v1/verifications/tx", `{"verificationUuid":"","txHash":""}`, true},
		{"/v1/verifications/error", `{"result":"NOPE"}`, false},
		{"/peer/v1/verifications/result", `{"result":"MAYBE"}`, true},
		{"/peer/v1/verifications/error", `{"reason":""}`, true},
	} {
		var r openapitest.Response
		if c.peer {
			r = e.Peer(c.path, []byte(c.body))
		} else {
			r = e.Client.Do("POST", c.path, []byte(c.body), nil)
		}
		require.Equal(t, 400, r.Status, "%s %s", c.path, r.Body)
		require.JSONEq(t, want, string(r.Body), c.path)
	}
}
