package api_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/api"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/pglocal"
)

// TestDatabaseDownIsServiceUnavailableOnEveryRoute: with PostgreSQL stopped, every route that
// needs the database answers 503 SERVICE-UNAVAILABLE with Retry-After and {code,message} —
// never INTERNAL-ERROR — and every route answers as before once it is back.
func TestDatabaseDownIsServiceUnavailableOnEveryRoute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A server of its own: this test stops it, and the shared one serves every other test.
	pg, dsn := dbtest.OwnServer(t, pglocal.Options{Ephemeral: true})

	e := et.Start(t, et.Options{DSN: dsn, APIOnly: true, JSONLogs: true})
	v := e.CreateOutgoing("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	some := uuid.NewString()
	hash := et.TxHash("outage")
	type request struct{ method, path, body string }
	peer := func(path, body string) request { return request{"PEER", path, body} }
	needDB := map[string]request{
		"POST /v1/verifications":                                           {"POST", "/v1/verifications", string(mustJSON(t, et.VerificationBody("ETH", "", "1", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")))},
		"GET /v1/verifications":                                            {"GET", "/v1/verifications", ""},
		"GET /v1/verifications/:verificationUuid":                          {"GET", "/v1/verifications/" + v, ""},
		"POST /v1/verifications/:verificationUuid/result":                  {"POST", "/v1/verifications/" + v + "/result", `{"result":"VERIFIED","reason":"OK"}`},
		"POST /v1/verifications/tx":                                        {"POST", "/v1/verifications/tx", fmt.Sprintf(`{"verificationUuid":%q,"txHash":%q}`, v, hash)},
		"POST /v1/verifications/error":                                     {"POST", "/v1/verifications/error", fmt.Sprintf(`{"verificationUuid":%q,"result":"ERROR","reason":"CANCELED"}`, v)},
		"POST /v1/risk-assessment/chainalysis-kyt":                         {"POST", "/v1/risk-assessment/chainalysis-kyt", fmt.Sprintf(`{"verificationUuid":%q}`, v)},
		"GET /v1/risk-assessment/chainalysis-kyt":                          {"GET", "/v1/risk-assessment/chainalysis-kyt", ""},
		"GET /v1/risk-assessment/chainalysis-kyt/alerts":                   {"GET", "/v1/risk-assessment/chainalysis-kyt/alerts", ""},
		"GET /v1/risk-assessment/chainalysis-kyt/:requestId":               {"GET", "/v1/risk-assessment/chainalysis-kyt/" + some, ""},
		"POST /v1/risk-assessment/chainalysis-address-screening":           {"POST", "/v1/risk-assessment/chainalysis-address-screening", fmt.Sprintf(`{"verificationUuid":%q}`, v)},
		"GET /v1/risk-assessment/chainalysis-address-screening":            {"GET", "/v1/risk-assessment/chainalysis-address-screening", ""},
		"GET /v1/risk-assessment/chainalysis-address-screening/:requestId": {"GET", "/v1/risk-assessment/chainalysis-address-screening/" + some, ""},
		"GET /v1/callbacks":                                                {"GET", "/v1/callbacks", ""},
		"POST /v1/callbacks/:id/redeliver":                                 {"POST", "/v1/callbacks/" + some + "/redeliver", ""},
		"POST /v1/callbacks/redeliver":                                     {"POST", "/v1/callbacks/redeliver", `{"status":"FAILED"}`},
		"GET /v1/peer-messages":                                            {"GET", "/v1/peer-messages", ""},
		"POST /v1/peer-messages/:id/redeliver":                             {"POST", "/v1/peer-messages/" + some + "/redeliver", ""},
		"POST /peer/v1/verifications":                                      peer("/peer/v1/verifications", string(peerVerification(t, some))),
		"POST /peer/v1/verifications/tx":                                   peer("/peer/v1/verifications/tx", fmt.Sprintf(`{"verificationUuid":%q,"txHash":%q}`, some, hash)),
		"POST /peer/v1/verifications/result":                               peer("/peer/v1/verifications/result", fmt.Sprintf(`{"verificationUuid":%q,"result":"VERIFIED","reason":"OK"}`, v)),
		"POST /peer/v1/verifications/error":                                peer("/peer/v1/verifications/error", fmt.Sprintf(`{"verificationUuid":%q,"result":"ERROR","reason":"CANCELED"}`, v)),
		"GET /readyz":                                                      {"GET", "/readyz", ""},
		"GET /v1/vasps":                                                    {"GET", "/v1/vasps", ""},
		"POST /v1/verifications/tx/inquiry":                                {"POST", "/v1/verifications/tx/inquiry", fmt.Sprintf(`{"verificationUuid":%q}`, v)},
		"POST /peer/v1/verifications/tx/inquiry":                           peer("/peer/v1/verifications/tx/inquiry", fmt.Sprintf(`{"verificationUuid":%q}`, v)),
	}
	// Routes that answer without the database.
	noDB := map[string]request{
		"GET /healthz":      {"GET", "/healthz", ""},
		"GET /metrics":      {"GET", "/metrics", ""},
		"GET /openapi.yaml": {"GET", "/openapi.yaml", ""},
		"GET /v1/counterparties/:vaspId/chainalysis-kyt": {"GET", "/v1/counterparties/" + et.TheirVasp + "/chainalysis-kyt", ""},
		// The synchronous account check stores nothing: it asks the counterparty (here one that
		// is not there: ERROR / REQUEST-TIMEOUT) or answers UNSUPPORTED without a Verify Account API.
		"GET /v1/vasps/self": {"GET", "/v1/vasps/self", ""},
		"POST /v1/verifications/account": {"POST", "/v1/verifications/account",
			`{"beneficiaryVaspId":"` + et.TheirVasp + `","symbol":"ETH","payload":{"ivms101":{"beneficiary":{"accountNumber":["0x1"]}}}}`},
		"POST /peer/v1/verifications/account": peer("/peer/v1/verifications/account",
			`{"beneficiaryVaspId":"`+et.OurVasp+`","symbol":"ETH","payload":{"ivms101":{"beneficiary":{"accountNumber":["0x1"]}}}}`),
	}
	h := api.NewHandler(api.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	for _, r := range h.Routes() {
		_, a := needDB[r.Method+" "+r.Path]
		_, b := noDB[r.Method+" "+r.Path]
		require.True(t, a || b, "route %s %s: say here what it answers while the database is down", r.Method, r.Path)
	}
	send := func(t *testing.T, r request) (int, http.Header, []byte) {
		if r.method == "PEER" {
			a := e.Peer(r.path, []byte(r.body))
			return a.Status, a.Header, a.Body
		}
		var body []byte
		if r.body != "" {
			body = []byte(r.body)
		}
		a := e.Client.With(t).Do(r.method, r.path, body, nil)
		return a.Status, a.Header, a.Body
	}

	require.NoError(t, pg.Crash(ctx))
	for name, r := range needDB {
		t.Run("Down "+name, func(t *testing.T) {
			status, header, body := send(t, r)
			require.Equal(t, http.StatusServiceUnavailable, status, "%s", body)
			if name != "GET /readyz" {
				require.Equal(t, "5", header.Get("Retry-After"))
			}
			require.Equal(t, "SERVICE-UNAVAILABLE", decodeAs[apiError](t, body).Code)
			require.NotEmpty(t, decodeAs[apiError](t, body).Message)
		})
	}
	for name, r := range noDB {
		t.Run("Down "+name, func(t *testing.T) {
			status, _, body := send(t, r)
			require.Less(t, status, 500, "%s", body)
		})
	}
	require.NotContains(t, e.Logs.String(), "INTERNAL-ERROR")
	require.NotContains(t, e.Logs.String(), `"status":500`)

	require.NoError(t, pg.Resume(ctx))
	for name, r := range needDB {
		t.Run("Back "+name, func(t *testing.T) {
			var status int
			var body []byte
			require.Eventually(t, func() bool {
				status, _, body = send(t, r)
				return status < 500
			}, 20*time.Second, 100*time.Millisecond, "%s answers again once the database is back: %d %s", name, status, body)
			require.False(t, strings.Contains(string(body), "SERVICE-UNAVAILABLE"))
		})
	}
}
