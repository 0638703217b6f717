package webhook

import (
	"encoding/base64"
	"net/http"
	"testing"
	"time"
)

// FuzzParseBody: whatever a request carries, checking it never panics and only a body signed
// with the secret verifies; a signed body of any shape decodes or fails cleanly.
// Run longer with: go test ./webhook -run '^$' -fuzz FuzzParseBody -fuzztime 60s
func FuzzParseBody(f *testing.F) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("fuzz-secret-32-bytes-long-000000"))
	f.Add("msg_1", "1700000000", "v1,AAAA", []byte(`{"callbackType":"CHAINALYSIS_KYT_RESULT","data":{}}`))
	f.Add("", "", "", []byte(``))
	f.Add("msg_\x00", "-1", "v1,", []byte("\xff\xfe"))
	f.Add("id", "99999999999999999999", "v2,abc v1,def", []byte(`{"callbackType":"CHAINALYSIS_KYT_RESULT","data":{"riskAssessment":{"chainalysisKYT":{"alertCount":"x"}}}}`))
	f.Fuzz(func(t *testing.T, id, ts, sig string, body []byte) {
		h := http.Header{HeaderID: {id}, HeaderTimestamp: {ts}, HeaderSignature: {sig}}
		if _, err := ParseBody(secret, h, body); err == nil {
			t.Fatalf("accepted a request nobody signed: id %q ts %q sig %q", id, ts, sig)
		}
		signed, err := Sign(secret, "msg_fuzz", time.Now(), body)
		if err != nil {
			t.Fatal(err)
		}
		if err := Verify(secret, signed, body); err != nil {
			t.Fatalf("refused a body signed with the secret: %v", err)
		}
		if cb, err := ParseBody(secret, signed, body); err == nil {
			cb.KYTResult() //nolint:errcheck // any body: decodes or fails, never panics
		}
	})
}
