package api

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/travelrule/enclave/internal/apperr"
)

// FuzzDecodeJSON: whatever the body, decoding never panics, every refusal is a BAD-REQUEST,
// and what it accepts PostgreSQL can store: UTF-8 without a NUL character or a lone surrogate.
// Run longer with: go test ./api -run '^$' -fuzz FuzzDecodeJSON -fuzztime 60s
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"verificationUuid":"urn:uuid:3fa85f64-5717-4562-b3fc-2c963f66afa6","txHash":"0xab"}`,
		`{"txHash":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\udc00\ud800"}`, "{\"a\":\"\xff\"}",
		`{"n":1e1000000}`, `{"n":-0.000001e-999}`, `{"a":[1,[2,{"b":"\u0000"}]]}`, `{"vout":2147483648}`,
		`{"beneficiaryVaspId":"2","assetInfo":{"symbol":"ETH","amount":"1"},"payload":{"ivms101":{"beneficiary":{"accountNumber":["0x00"]}}}}`,
		`[]`, `""`, `null`, `{"\u0000":1}`, `{"a\\u0000":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		err := decodeJSON(b, &v)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadRequest {
				t.Fatalf("refusal %v is not a BAD-REQUEST", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted a body that is not UTF-8: %q", b)
		}
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if strings.ContainsRune(x, 0) || strings.ContainsRune(x, utf8.RuneError) && !strings.Contains(string(b), "\\ufffd") && !strings.ContainsRune(string(b), utf8.RuneError) && !strings.Contains(strings.ToLower(string(b)), "\\ufffd") {
					t.Fatalf("accepted a string PostgreSQL cannot store: %q in %q", x, b)
				}
			case map[string]any:
				for k, y := range x {
					walk(k)
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		walk(v)
		_ = json.Valid(b)
	})
}
