package webhook_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/webhook"
)

var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("receiver-secret-of-32-bytes-0000"))

const body = `{"callbackType":"CHAINALYSIS_KYT_RESULT","data":{"verificationUuid":"69a310e6-810f-4a31-83d1-bcdafccf5304",
"riskAssessment":{"chainalysisKYT":{"requestId":"f7231c6f-f1e7-4ae7-b143-2c87cd38abe9","apiType":"ATTEMPT","status":"PROCESSED","alertCount":1,
"usdPrice":"1820.17","externalId":"79382ac9-c7be-3fab-ad56-8c61c654e2fc"},
"chainalysisKYTAlerts":[{"alertId":"118b8cc8-f579-11ed-b86d-a3210c6ca9b8","alertLevel":"MEDIUM","entityCategory":"high risk exchange","alertAmount":"1820.17"}]}}}`

func TestVerifyAndDecode(t *testing.T) {
	t.Parallel()
	h, err := webhook.Sign(secret, "cb-1", time.Now(), []byte(body))
	require.NoError(t, err)
	req := httptest.NewRequest("POST", "/callbacks", bytes.NewReader([]byte(body)))
	for k, v := range h {
		req.Header[k] = v
	}
	cb, err := webhook.Parse(secret, req)
	require.NoError(t, err)
	require.Equal(t, "cb-1", cb.ID)
	d, err := cb.KYTResult()
	require.NoError(t, err)
	require.Equal(t, "69a310e6-810f-4a31-83d1-bcdafccf5304", d.VerificationUUID)
	k := d.RiskAssessment.ChainalysisKYT
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount)
	require.Equal(t, "1820.17", *k.USDPrice)
	require.Equal(t, "MEDIUM", d.RiskAssessment.ChainalysisKYTAlerts[0].AlertLevel)
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("some-other-secret-of-32-bytes-00"))
	cases := map[string]struct {
		signWith string
		at       time.Time
		body     string
	}{
		"TamperedBody": {secret, time.Now(), body[:len(body)-2] + " }"},
		"WrongSecret":  {other, time.Now(), body},
		"Stale":        {secret, time.Now().Add(-6 * time.Minute), body},
		"FromFuture":   {secret, time.Now().Add(6 * time.Minute), body},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			h, err := webhook.Sign(tc.signWith, "cb-2", tc.at, []byte(body))
			require.NoError(t, err)
			_, err = webhook.ParseBody(secret, h, []byte(tc.body))
			require.True(t, errors.Is(err, webhook.ErrSignature), "%v", err)
		})
	}
	h, _ := webhook.Sign(secret, "cb-3", time.Now(), []byte(body))
	h.Del(webhook.HeaderSignature)
	_, err := webhook.ParseBody(secret, h, []byte(body))
	require.ErrorIs(t, err, webhook.ErrSignature, "unsigned")
	h, _ = webhook.Sign(secret, "cb-4", time.Now(), []byte(body))
	require.Equal(t, strconv.FormatInt(time.Now().Unix(), 10)[:8], h.Get(webhook.HeaderTimestamp)[:8])
	_, err = webhook.Sign("not-a-secret!", "x", time.Now(), nil)
	require.Error(t, err)
}

func TestKYTResultRefusesOtherTypes(t *testing.T) {
	t.Parallel()
	_, err := webhook.Callback{CallbackType: "TX_REPORT", Data: []byte(`{}`)}.KYTResult()
	require.Error(t, err)
}

func TestFinal(t *testing.T) {
	for status, final := range map[string]bool{webhook.StatusPending: false, webhook.StatusRegistered: false,
		webhook.StatusProcessed: true, webhook.StatusError: true} {
		require.Equal(t, final, webhook.ChainalysisKYT{Status: status}.Final(), status)
	}
}

// TestAddressScreeningResult: a screening callback decodes with Chainalysis's lists as they
// came; a KYT callback is not one, and an alert callback reads as a KYT result.
func TestAddressScreeningResult(t *testing.T) {
	t.Parallel()
	const screening = `{"callbackType":"CHAINALYSIS_ADDRESS_SCREENING_RESULT","data":{"verificationUuid":"69a310e6-810f-4a31-83d1-bcdafccf5304",
"riskAssessment":{"chainalysisAddressScreening":{"requestId":"f7231c6f-f1e7-4ae7-b143-2c87cd38abe9","address":"0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1",
"status":"PROCESSED","risk":"Severe","riskReason":"Identified as Sanctioned Entity","cluster":{"name":"OFAC SDN Lazarus Group 2022-04-22","category":"sanctioned entity"},
"addressType":null,"addressIdentifications":[],"exposures":[{"category":"sanctioned entity","value":152638682.86834}],
"triggers":[{"category":"sanctioned entity","percentage":51.537210,"message":"> 51% exposure to sanctioned entity","ruleTriggered":{"risk":"Severe","minThreshold":0.0,"maxThreshold":1.0}}]}}}}`
	h, err := webhook.Sign(secret, "cb-2", time.Now(), []byte(screening))
	require.NoError(t, err)
	cb, err := webhook.ParseBody(secret, h, []byte(screening))
	require.NoError(t, err)
	d, err := cb.AddressScreeningResult()
	require.NoError(t, err)
	a := d.RiskAssessment.ChainalysisAddressScreening
	require.True(t, a.Final())
	require.Equal(t, "Severe", *a.Risk)
	require.Nil(t, a.AddressType)
	require.Contains(t, string(a.Triggers), `"percentage":51.537210`, "numbers as Chainalysis wrote them")
	_, err = cb.KYTResult()
	require.Error(t, err)
	_, err = webhook.Callback{CallbackType: webhook.TypeKYTResult, Data: []byte(`{}`)}.AddressScreeningResult()
	require.Error(t, err)
	_, err = webhook.Callback{CallbackType: webhook.TypeKYTAlert, Data: []byte(`{}`)}.KYTResult()
	require.NoError(t, err)
}
