package chainalysis

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzAnswers: whatever Chainalysis (or a proxy before it) answers — any status, content type
// and body — classifying it never panics, keeps at most a short message, and decoding it into
// the client's types fails cleanly or succeeds. The message is stored (error_message), so it
// must be UTF-8 text without NUL.
// Run longer with: go test ./internal/chainalysis -run '^$' -fuzz FuzzAnswers -fuzztime 60s
func FuzzAnswers(f *testing.F) {
	f.Add(429, "application/json", "5", []byte(`{"message":"Too many requests"}`))
	f.Add(503, "text/html", "", []byte(`<html><body>down</body></html>`))
	f.Add(400, "application/json", "Wed, 21 Oct 2015 07:28:00 GMT", []byte(`{"error":{"message":1}}`))
	f.Add(200, "application/json", "", []byte(`{"updatedAt":"2022-06-08T19:26:12.690702","usdAmount":1e400,"idx":"x"}`))
	f.Add(302, "", "-1", []byte("\xff"+strings.Repeat("a", 2000)))
	f.Add(500, "text/plain", "", []byte(strings.Repeat("é", 499)+"\x00\xff€"))
	f.Add(404, "application/json", "", []byte(`{"message":"Entity not found. Please be sure to register the Entity."}`))
	f.Add(200, "application/json", "", []byte(`{"address":"0x1","risk":"Low","cluster":{"name":"\u0000"},"exposures":[{"category":"x","value":"1e400"}],"triggers":[{"ruleTriggered":null}],"poolMetadata":{"fees":null}}`))
	f.Fuzz(func(t *testing.T, status int, contentType, retryAfter string, body []byte) {
		resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {contentType}, "Retry-After": {retryAfter}}}
		e := classify("fuzz", resp, body)
		if !utf8.ValidString(e.Message) || strings.ContainsRune(e.Message, 0) {
			t.Fatalf("message %q cannot be stored as text", e.Message)
		}
		if utf8.RuneCountInString(e.Message) > 501 {
			t.Fatalf("message of %d characters kept", utf8.RuneCountInString(e.Message))
		}
		if e.RetryAfter < 0 {
			t.Fatalf("negative Retry-After %s from %q", e.RetryAfter, retryAfter)
		}
		for _, out := range []any{&Transfer{}, &WithdrawalAttempt{}, &Alerts{}, &Entity{}} {
			if json.Unmarshal(body, out) == nil {
				if tr, ok := out.(*Transfer); ok && tr.UpdatedAt != nil {
					ParseTime(*tr.UpdatedAt) //nolint:errcheck // any text: parses or fails, never panics
				}
			}
		}
	})
}
