package exchange

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/verification"
)

// FuzzReadAccountResult: whatever a counterparty answers to an account check, reading it never
// panics, and what is accepted is an answer the enclave may pass on: a known result with a
// reason that result allows.
// Run longer with: go test ./internal/exchange -run '^$' -fuzz FuzzReadAccountResult -fuzztime 60s
func FuzzReadAccountResult(f *testing.F) {
	for _, s := range []string{`{"accountVerificationResult":"VERIFIED","reason":"OK","message":""}`,
		`{"accountVerificationResult":"DENIED","reason":"MISMATCHED-NAME","message":"x"}`, `{"accountVerificationResult":"ERROR","reason":"UNSUPPORTED"}`,
		`{"accountVerificationResult":"VERIFIED","reason":"BECAUSE"}`, `{"accountVerificationResult":"MAYBE"}`, `[]`, `null`, `{"reason":7}`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := readAccountResult(b)
		if err != nil {
			return
		}
		switch r.AccountVerificationResult {
		case "VERIFIED":
			if r.Reason != verification.ReasonOK {
				t.Fatalf("accepted VERIFIED with %q", r.Reason)
			}
		case "DENIED":
			if !slices.Contains(verification.DeniedReasons, r.Reason) {
				t.Fatalf("accepted DENIED with %q", r.Reason)
			}
		case "ERROR":
			if !slices.Contains(accountErrorReasons, r.Reason) {
				t.Fatalf("accepted ERROR with %q", r.Reason)
			}
		default:
			t.Fatalf("accepted %q", r.AccountVerificationResult)
		}
		if len(r.Message) > 1000 {
			t.Fatalf("accepted a message of %d bytes", len(r.Message))
		}
	})
}

// FuzzReadTxStatus: whatever a counterparty answers to a tx inquiry, reading it never panics,
// and what is accepted is about the verification asked, with a known status.
// Run longer with: go test ./internal/exchange -run '^$' -fuzz FuzzReadTxStatus -fuzztime 60s
func FuzzReadTxStatus(f *testing.F) {
	const id = "6a1f0a52-3f35-4cf2-9d6b-6f3f6c0d2a10"
	for _, s := range []string{`{"verificationUuid":"` + id + `","transactionStatus":"CONFIRMED","txHash":"0xab","vout":1}`,
		`{"verificationUuid":"6A1F0A52-3F35-4CF2-9D6B-6F3F6C0D2A10","transactionStatus":"PENDING"}`,
		`{"verificationUuid":"` + id + `","transactionStatus":"SOON"}`, `{"transactionStatus":"PENDING"}`,
		`{"verificationUuid":"` + id + `","transactionStatus":"PROCESSING","vout":-1}`, `{}`, `"x"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := readTxStatus(b, id)
		if err != nil {
			return
		}
		if st.VerificationUUID != id {
			t.Fatalf("accepted an answer about %q", st.VerificationUUID)
		}
		if !slices.Contains([]string{"PENDING", "PROCESSING", "WAIT-CONFIRM", "CONFIRMED", "CANCELED"}, st.TransactionStatus) {
			t.Fatalf("accepted status %q", st.TransactionStatus)
		}
		if st.Vout != nil && *st.Vout < 0 {
			t.Fatalf("accepted vout %d", *st.Vout)
		}
	})
}

// TestAnswersAreReadStrictly: a counterparty's answer with a key twice or in another case is
// refused naming it, as signed peer bodies are (internal/strictjson).
func TestAnswersAreReadStrictly(t *testing.T) {
	t.Parallel()
	_, err := readAccountResult([]byte(`{"accountVerificationResult":"DENIED","accountVerificationResult":"VERIFIED","reason":"OK"}`))
	require.ErrorContains(t, err, "accountVerificationResult: the key appears twice")
	_, err = readTxStatus([]byte(`{"verificationUuid":"6a1f0a52-3f35-4cf2-9d6b-6f3f6c0d2a10","TransactionStatus":"CONFIRMED"}`), "6a1f0a52-3f35-4cf2-9d6b-6f3f6c0d2a10")
	require.ErrorContains(t, err, "TransactionStatus: keys are matched exactly; this one differs from transactionStatus only in case")
}
