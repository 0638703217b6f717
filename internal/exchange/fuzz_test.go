package exchange

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/validate"
)

// FuzzMessages: whatever a counterparty or a VASP sends as a result or an error report, its
// shape check never panics and refuses with a 400 code, and an accepted result is one the
// exchange knows. Run longer with: go test ./internal/exchange -run '^$' -fuzz FuzzMessages -fuzztime 60s
func FuzzMessages(f *testing.F) {
	for _, s := range []string{
		`{"verificationUuid":"3fa85f64-5717-4562-b3fc-2c963f66afa6","result":"VERIFIED","reason":"OK","ivms101":{"beneficiary":{"accountNumber":["0x1"]}}}`,
		`{"verificationUuid":"3FA85F64-5717-4562-B3FC-2C963F66AFA6","verificationResult":"DENIED","reason":"BLACKLISTED"}`,
		`{"verificationUuid":"x","result":"PENDING"}`, `{"result":"DENIED","reason":"NOPE"}`, `{"ivms101":null}`,
		`{"verificationUuid":"3fa85f64-5717-4562-b3fc-2c963f66afa6","result":"ERROR","reason":"USER-CANCELED","message":"m"}`,
		`{"verificationUuid":" ","result":"TRANSFER_ERROR"}`, `{"ivms101":{"beneficiary":7}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m ResultMessage
		if json.Unmarshal(b, &m) == nil {
			_, o, err := m.check()
			if err != nil {
				badRequest(t, err)
			} else if !o.Result.Terminal() {
				t.Fatalf("accepted result %q", o.Result)
			}
		}
		var e ErrorMessage
		if json.Unmarshal(b, &e) == nil {
			if err := validate.Struct(e); err != nil {
				badRequest(t, err)
			}
		}
	})
}

func badRequest(t *testing.T, err error) {
	t.Helper()
	if e, ok := apperr.As(err); !ok || (e.Code != apperr.BadRequest && e.Code != apperr.MissingVerificationUUID) {
		t.Fatalf("refusal %v is not a 400", err)
	}
}

// FuzzInboundPayload: whatever IVMS101 a TRP originator sends, the payload built from it for
// the Travel Address's wallet is BAD-REQUEST or a verification payload whose beneficiary's
// first accountNumber is that wallet (when the inquiry named one).
func FuzzInboundPayload(f *testing.F) {
	for _, s := range []string{`{"originator":{},"beneficiary":{}}`, `{"beneficiary":{"accountNumber":["0xabc"]}}`,
		`{"beneficiary":{"accountNumber":["0xdef"]}}`, `{"beneficiary":{"accountNumber":7}}`, `[]`, `{"beneficiary":null}`} {
		f.Add([]byte(s), "0xabc")
		f.Add([]byte(s), "")
	}
	f.Fuzz(func(t *testing.T, ivms []byte, wallet string) {
		p, err := inboundPayload(ivms, wallet)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadRequest {
				t.Fatalf("not a BAD-REQUEST: %v", err)
			}
			return
		}
		var got struct {
			IVMS101 struct {
				Beneficiary struct{ AccountNumber []string } `json:"beneficiary"`
			} `json:"ivms101"`
		}
		if err := json.Unmarshal(p, &got); err != nil || len(got.IVMS101.Beneficiary.AccountNumber) == 0 {
			t.Fatalf("payload %s: %v", p, err)
		}
		if a := got.IVMS101.Beneficiary.AccountNumber[0]; wallet != "" && strings.TrimSpace(a) != wallet {
			t.Fatalf("payload names %q, not the wallet %q", a, wallet)
		}
	})
}
