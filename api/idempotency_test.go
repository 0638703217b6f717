package api_test

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	et "github.com/travelrule/enclave/internal/enclavetest"
)

// TestIdempotencyKey: a client whose connection broke retries with the same Idempotency-Key
// and gets the first answer, however many retries race; another body with that key is refused.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	keyed := func(key string) http.Header { return http.Header{"Idempotency-Key": {key}} }
	count := func(table string) (n int) {
		require.NoError(t, e.DB.Get(&n, `SELECT count(*) FROM `+table))
		return n
	}

	// Verifications.
	body, err := json.Marshal(et.VerificationBody("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"))
	require.NoError(t, err)
	first := e.Client.Do("POST", "/v1/verifications", body, keyed("create-1"))
	require.Equal(t, 200, first.Status, "%s", first.Body)
	again := e.Client.Do("POST", "/v1/verifications", body, keyed("create-1"))
	require.Equal(t, 200, again.Status, "%s", again.Body)
	require.JSONEq(t, string(first.Body), string(again.Body), "the first answer again")
	require.Equal(t, 1, count("verifications"))
	other, _ := json.Marshal(et.VerificationBody("ETH", "", "2", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"))
	r := e.Client.Do("POST", "/v1/verifications", other, keyed("create-1"))
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "Idempotency-Key")
	r = e.Client.Do("POST", "/v1/verifications", body, keyed("has a space"))
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "Idempotency-Key")
	var v struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(first.Body, &v))

	// Assessments, retried by eight clients at once.
	assess := []byte(`{"verificationUuid":"` + v.VerificationUUID + `"}`)
	answers := make([]string, 8)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			r := e.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", assess, keyed("assess-1"))
			answers[i] = string(r.Body)
		})
	}
	wg.Wait()
	for _, a := range answers {
		require.JSONEq(t, answers[0], a)
	}
	var out struct{ RequestID string }
	require.NoError(t, json.Unmarshal([]byte(answers[0]), &out))
	require.NotEmpty(t, out.RequestID)
	require.Equal(t, 1, count("kyt_results"), "one assessment")
	e.Receiver.Terminal(t, out.RequestID, 30e9)
	require.Len(t, e.Receiver.For(out.RequestID), 1, "one callback")

	r = e.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", []byte(`{"verificationUuid":"`+v.VerificationUUID+`","network":"Ethereum"}`), keyed("assess-1"))
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "Idempotency-Key: this key was used with another request body")
	// Without a key, every request is a new assessment, as before.
	r = e.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", assess, nil)
	require.Equal(t, 200, r.Status)
	require.Equal(t, 2, count("kyt_results"))
}
