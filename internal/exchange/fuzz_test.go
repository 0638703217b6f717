package exchange

import (
	"encoding/json"
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
