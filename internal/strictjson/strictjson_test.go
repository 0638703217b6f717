package strictjson

import (
	"encoding/json"
	"testing"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/apperr"
)

type inner struct {
	AccountNumber []string `json:"accountNumber"`
}

type message struct {
	VerificationUUID string `json:"verificationUuid"`
	Payload          struct {
		json.RawMessage
		IVMS101 *struct {
			Beneficiary *inner `json:"beneficiary"`
		} `json:"ivms101"`
	} `json:"payload"`
}

func TestASignedBodyHasOneReading(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, body, want string }{
		{"DuplicateKey", `{"verificationUuid":"a","verificationUuid":"b"}`, `verificationUuid: the key appears twice in its object`},
		{"DuplicateByEscape", `{"verificationUuid":"a","verification\u0055uid":"b"}`, `verificationUuid: the key appears twice`},
		{"DuplicateDeep", `{"payload":{"ivms101":{"beneficiary":{},"beneficiary":{}}}}`, `payload.ivms101.beneficiary: the key appears twice`},
		{"DuplicateInUnreadPart", `{"payload":{"ivms101":{"x":[{"name":1,"name":2}]}}}`, `payload.ivms101.x[0].name: the key appears twice`},
		{"OnlyCaseDiffers", `{"verificationUuid":"a","VERIFICATIONUUID":"b"}`, `verificationUuid and VERIFICATIONUUID: keys that differ only in case`},
		{"UnknownKeysDifferingInCase", `{"payload":{"note":1,"Note":2}}`, `payload.note and payload.Note: keys that differ only in case`},
		{"CaseOfAKnownField", `{"VERIFICATIONUUID":"a"}`, `VERIFICATIONUUID: keys are matched exactly; this one differs from verificationUuid only in case`},
		{"CaseOfANestedField", `{"payload":{"ivms101":{"beneficiary":{"AccountNumber":["x"]}}}}`, `payload.ivms101.beneficiary.AccountNumber: keys are matched exactly; this one differs from accountNumber`},
		{"KelvinSign", `{"verificationUuid":"a","payload":{"ivms101":{"\u212a":1,"k":2}}}`, `differ only in case`},
		{"CaseInAnArray", `[{"a":1},{"a":1,"A":2}]`, `[1].a and [1].A: keys that differ only in case`},
		{"NotJSON", `{"verificationUuid":`, `not valid JSON`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var m message
			err := Unmarshal([]byte(c.body), &m)
			e, ok := apperr.As(err)
			require.True(t, ok, "%v", err)
			require.Equal(t, apperr.BadRequest, e.Code)
			require.Contains(t, e.Message, c.want)
		})
	}
	var m message
	require.NoError(t, Unmarshal([]byte(`{"verificationUuid":"a","extra":{"x":1},"payload":{"ivms101":{"beneficiary":{"accountNumber":["0x1"]}}}}`), &m),
		"unknown keys are ignored, as ever")
	require.Equal(t, "0x1", m.Payload.IVMS101.Beneficiary.AccountNumber[0])
}

// simple has no custom decoding, so encoding/json and the v2 draft read it alike once Check
// passed: one reading.
type simple struct {
	VerificationUUID string `json:"verificationUuid"`
	Payload          struct {
		AccountNumber []string `json:"accountNumber"`
		Vout          *int     `json:"vout"`
	} `json:"payload"`
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"verificationUuid":"a"}`, `{"a":1,"A":2}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `{"PAYLOAD":{"accountNumber":["x"]}}`, `{"payload":{"vout":1}}`, `[1,{"x":1}]`, `"s"`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v1, v2 simple
		if Check(b, &v1) != nil {
			return
		}
		// Passed: encoding/json (any case, last key wins) and v2 (exact names, no duplicates)
		// read the same message.
		if json.Unmarshal(b, &v1) == nil && jsonv2.Unmarshal(b, &v2) == nil {
			require.Equal(t, v2, v1, "%s", b)
		}
	})
}
