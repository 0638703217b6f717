package kytjob_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

func TestMain(m *testing.M) { et.Main(m, runChild) }

const wait = 30 * time.Second

var timeRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)

// kytCalls returns the Chainalysis requests kytsim received about an externalId or userId.
func kytCalls(e *et.Enclave, match ...string) []kytsim.Request {
	var out []kytsim.Request
	for _, r := range e.Sim.Requests() {
		for _, m := range match {
			if strings.Contains(r.Path, m) || strings.Contains(r.Body, m) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

func body(t *testing.T, r kytsim.Request) map[string]any {
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(r.Body))
	d.UseNumber()
	require.NoError(t, d.Decode(&m), "%s", r.Body)
	return m
}

func TestOriginatorBeforeTxIsAnAttempt(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	sanctioned := "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	v := e.CreateOutgoing("eth", "Ethereum", "1.5", sanctioned)
	id := e.Assess(v, "")
	cb := e.Receiver.Terminal(t, id, wait)

	k := cb.Data.RiskAssessment.ChainalysisKYT
	calls := kytCalls(e, id, *k.ExternalID)
	require.Len(t, calls, 2, "an attempt processed at registration needs exactly two calls")
	require.Equal(t, "POST", calls[0].Method)
	require.Equal(t, "/v2/users/"+et.TheirVasp+"/withdrawal-attempts", calls[0].Path, "userId is the counterparty's VASP id")
	b := body(t, calls[0])
	require.Equal(t, "Ethereum", b["network"])
	require.Equal(t, "ETH", b["asset"])
	require.Equal(t, sanctioned, b["address"], "the beneficiary's wallet is screened")
	require.Equal(t, id, b["attemptIdentifier"], "attemptIdentifier is the requestId")
	require.Equal(t, json.Number("1.5"), b["assetAmount"])
	require.Regexp(t, timeRe, b["attemptTimestamp"])
	require.Equal(t, "GET", calls[1].Method)
	require.Equal(t, "/v2/withdrawal-attempts/"+*k.ExternalID+"/alerts", calls[1].Path)

	require.Equal(t, webhook.TypeKYTResult, cb.Type)
	require.Equal(t, v, cb.Data.VerificationUUID)
	require.Equal(t, id, k.RequestID)
	require.Equal(t, et.TheirVasp, k.CounterpartyVaspID)
	require.Equal(t, "ATTEMPT", k.APIType)
	require.Equal(t, et.TheirVasp, k.UserID)
	require.Equal(t, "OUTGOING", k.Direction)
	require.Equal(t, "ETHEREUM", k.Network)
	require.Equal(t, "ETH", k.Asset)
	require.Equal(t, "1.5", k.Amount)
	require.Equal(t, "2730.26", *k.USDPrice, "1.5 ETH at 1820.17, from Chainalysis's usdAmount")
	require.Nil(t, k.TransferRef, "no transferRef for an ATTEMPT")
	require.Equal(t, sanctioned, k.OutputAddress)
	require.Regexp(t, timeRe, *k.Timestamp)
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount)
	require.Regexp(t, timeRe, k.CreatedAt)
	require.Regexp(t, timeRe, *k.AssessedAt)
	require.Nil(t, k.Error)
	require.Len(t, cb.Data.RiskAssessment.ChainalysisKYTAlerts, 1)
	a := cb.Data.RiskAssessment.ChainalysisKYTAlerts[0]
	require.Equal(t, et.TheirVasp, a.CounterpartyVaspID)
	require.Equal(t, *k.ExternalID, a.ExternalID)
	require.Equal(t, "OUTGOING", a.Direction)
	require.NotEmpty(t, a.AlertID)
	require.Equal(t, "SEVERE", a.AlertLevel)
	require.Equal(t, "sanctioned entity", *a.EntityCategory)
	require.Equal(t, "OFAC SDN Lazarus Group 2022-04-22", *a.ServiceName)
	require.Equal(t, "DIRECT", a.ExposureType)
	require.Equal(t, "2730.26", a.AlertAmount)
	require.Regexp(t, timeRe, a.CreatedAt)

	// The callback's headers and the GET answer agree with it.
	require.Equal(t, "Bearer "+et.Token, cb.Header.Get("Authorization"))
	require.Equal(t, cb.Data, e.Get(id))
	require.Len(t, e.Receiver.For(id), 1, "exactly one callback")
}

func TestOriginatorAfterTxIsASentTransfer(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	risky := "0xbb3fd383d1c5540e52ef0a7bcb9433375793aeaf"
	v := e.CreateOutgoing("ETH", "", "1", risky)
	hash := "0xe823c9b7895f9c47985c80e4611272f8194403e885c9cc603422cd609d738098"
	e.ReportTx(v, hash)
	id := e.Assess(v, "ethereum")
	cb := e.Receiver.Terminal(t, id, wait)
	k := cb.Data.RiskAssessment.ChainalysisKYT

	calls := kytCalls(e, hash, *k.ExternalID)
	require.Len(t, calls, 3, "register, summary, alerts")
	require.Equal(t, "/v2/users/"+et.TheirVasp+"/transfers", calls[0].Path)
	b := body(t, calls[0])
	require.Equal(t, map[string]any{"network": "Ethereum", "asset": "ETH", "transferReference": hash + ":" + risky,
		"direction": "sent", "assetAmount": json.Number("1")}, b)
	require.Equal(t, "/v2/transfers/"+*k.ExternalID, calls[1].Path)
	require.Equal(t, "/v2/transfers/"+*k.ExternalID+"/alerts", calls[2].Path)

	require.Equal(t, "TRANSFER", k.APIType)
	require.Equal(t, "OUTGOING", k.Direction)
	require.Equal(t, hash+":"+risky, *k.TransferRef)
	require.Equal(t, "1820.17", *k.USDPrice)
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount)
	a := cb.Data.RiskAssessment.ChainalysisKYTAlerts[0]
	require.Equal(t, "MEDIUM", a.AlertLevel)
	require.Equal(t, "high risk exchange", *a.EntityCategory)
	require.Equal(t, "HIGH RISK EXCHANGE: SimpleSwap.io bb3fd383d1c5540e52ef0a7bcb9433375793aeaf", *a.ServiceName)
	require.Equal(t, "1820.17", a.AlertAmount)
}

func TestBeneficiaryBeforeTxIsRefused(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	v := uuid.NewString()
	e.ReceiveIncoming(v, "BTC", "", "0.1", "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7")
	r := e.Client.Do("POST", "/v1/risk-assessment/chainalysis-kyt", []byte(fmt.Sprintf(`{"verificationUuid":%q}`, v)), nil)
	require.Equal(t, 400, r.Status)
	require.JSONEq(t, `{"code":"UNSUPPORTED-RISK-ASSESSMENT","message":"Chainalysis KYT API for received transfer should be called after txHash is reported"}`, string(r.Body))
	require.Empty(t, e.Sim.Requests(), "no Chainalysis call")
}

func TestBeneficiaryAfterTxIsAReceivedTransfer(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	// The KYT guide's received transfer: its sender is OFAC-designated.
	v := uuid.NewString()
	ours := "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7"
	hash := "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011"
	e.ReceiveIncoming(v, "btc", "bitcoin", "0.0000867", ours)
	e.ReceiveTxReport(v, hash)
	id := e.Assess(v, "")
	cb := e.Receiver.Terminal(t, id, wait)
	k := cb.Data.RiskAssessment.ChainalysisKYT

	calls := kytCalls(e, hash, *k.ExternalID)
	require.Len(t, calls, 3)
	require.Equal(t, "/v2/users/"+et.TheirVasp+"/transfers", calls[0].Path, "userId is the originating VASP")
	require.Equal(t, map[string]any{"network": "Bitcoin", "asset": "BTC", "transferReference": hash + ":" + ours,
		"direction": "received", "assetAmount": json.Number("0.0000867")}, body(t, calls[0]))

	require.Equal(t, "TRANSFER", k.APIType)
	require.Equal(t, "INCOMING", k.Direction)
	require.Equal(t, et.TheirVasp, k.CounterpartyVaspID)
	require.Equal(t, "BITCOIN", k.Network)
	require.Equal(t, ours, k.OutputAddress)
	require.Equal(t, "2021-01-12T06:11:30.000Z", *k.Timestamp, "the on-chain time from the summary")
	require.Equal(t, "2.59", *k.USDPrice)
	require.Equal(t, 1, *k.AlertCount)
	a := cb.Data.RiskAssessment.ChainalysisKYTAlerts[0]
	require.Equal(t, "SEVERE", a.AlertLevel)
	require.Equal(t, "OFAC SDN Fujing Zheng 2019-08-21", *a.ServiceName)
	require.Equal(t, "INCOMING", a.Direction)

	// A clean deposit: no alerts, an empty list, alertCount 0.
	v2 := uuid.NewString()
	e.ReceiveIncoming(v2, "ETH", "", "2", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	e.ReceiveTxReport(v2, et.TxHash("0xclean"))
	id2 := e.Assess(v2, "")
	k2 := e.Receiver.Terminal(t, id2, wait).Data
	require.Equal(t, 0, *k2.RiskAssessment.ChainalysisKYT.AlertCount)
	require.Empty(t, k2.RiskAssessment.ChainalysisKYTAlerts)
	require.NotNil(t, k2.RiskAssessment.ChainalysisKYTAlerts, "an empty array, not null")
}

func TestAcceptErrors(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	usdt := e.CreateOutgoing("USDT", "", "10", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	eth := e.CreateOutgoing("ETH", "Ethereum", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	unknown := uuid.NewString()
	cases := []struct {
		name, body, code, message string
	}{
		{"MissingUUID", `{}`, "MISSING-VERIFICATION-UUID", "`verificationUuid` is required."},
		{"EmptyUUID", `{"verificationUuid":" "}`, "MISSING-VERIFICATION-UUID", "`verificationUuid` is required."},
		{"UnknownUUID", fmt.Sprintf(`{"verificationUuid":%q}`, unknown), "NOT-FOUND-VERIFICATION", "Verification(" + unknown + ") is not found"},
		{"NotAUUID", `{"verificationUuid":"abc"}`, "BAD-REQUEST", "verificationUuid"},
		{"MalformedJSON", `{"verificationUuid":`, "BAD-REQUEST", "JSON"},
		{"WrongType", `{"verificationUuid":42}`, "BAD-REQUEST", "verificationUuid"},
		{"UnknownNetwork", fmt.Sprintf(`{"verificationUuid":%q,"network":"Narnia"}`, eth), "BAD-REQUEST", "network"},
		{"ConflictingNetwork", fmt.Sprintf(`{"verificationUuid":%q,"network":"Tron"}`, eth), "BAD-REQUEST", "conflicts"},
		{"MultiNetworkAssetWithoutNetwork", fmt.Sprintf(`{"verificationUuid":%q}`, usdt), "BAD-REQUEST", "several networks"},
		{"AssetNotOnNetwork", fmt.Sprintf(`{"verificationUuid":%q,"network":"Bitcoin"}`, usdt), "BAD-REQUEST", "does not exist on network BITCOIN"},
		{"AddressNotOnNetwork", fmt.Sprintf(`{"verificationUuid":%q,"network":"Tron"}`, usdt), "BAD-REQUEST", "is not an address on TRON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.Client.With(t).Do("POST", "/v1/risk-assessment/chainalysis-kyt", []byte(tc.body), nil)
			require.Equal(t, 400, r.Status, "%s", r.Body)
			var got struct{ Code, Message string }
			require.NoError(t, json.Unmarshal(r.Body, &got))
			require.Equal(t, tc.code, got.Code)
			require.Contains(t, got.Message, tc.message)
		})
	}
	c := *e.Client
	c.Bearer = "wrong"
	r := c.Do("POST", "/v1/risk-assessment/chainalysis-kyt", []byte(fmt.Sprintf(`{"verificationUuid":%q}`, eth)), nil)
	require.Equal(t, 403, r.Status)
	require.JSONEq(t, `{"code":"UNKNOWN-ERROR-CODE","message":"AccessDenied"}`, string(r.Body))

	// Naming the network makes the multi-network asset assessable.
	id := e.Assess(usdt, "ethereum")
	require.Equal(t, "ETHEREUM", e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT.Network)
	var n int
	require.NoError(t, e.DB.Get(&n, `SELECT count(*) FROM kyt_results`))
	require.Equal(t, 1, n, "refused requests store nothing")
}

func TestRepeatAssessmentsAndListing(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	v := e.CreateOutgoing("BTC", "", "0.5", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH")
	a1, a2 := e.Assess(v, ""), e.Assess(v, "")
	require.NotEqual(t, a1, a2, "every call gets a new requestId")
	e.Receiver.Terminal(t, a1, wait)
	e.Receiver.Terminal(t, a2, wait)
	other := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	e.ReportTx(other, et.TxHash("0xabc"))
	a3 := e.Assess(other, "")
	e.Receiver.Terminal(t, a3, wait)

	type page struct {
		Total int
		Data  []webhook.KYTResultData
	}
	list := func(q string) page {
		r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt"+q, nil, nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		var p page
		require.NoError(t, json.Unmarshal(r.Body, &p))
		return p
	}
	require.Equal(t, 3, list("").Total)
	require.Equal(t, 2, list("?verificationUuid="+v).Total)
	require.Equal(t, 2, list("?apiType=attempt").Total)
	require.Equal(t, 1, list("?apiType=TRANSFER&direction=OUTGOING").Total)
	require.Equal(t, 3, list("?status=PROCESSED").Total)
	p := list("?limit=1&offset=0")
	require.Len(t, p.Data, 1)
	require.Equal(t, a3, p.Data[0].RiskAssessment.ChainalysisKYT.RequestID, "newest first")
	require.Equal(t, "SEVERE", list("?verificationUuid=" + v).Data[0].RiskAssessment.ChainalysisKYTAlerts[0].AlertLevel)
	for _, q := range []string{"?status=DONE", "?apiType=X", "?direction=UP", "?verificationUuid=x", "?limit=0"} {
		r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt"+q, nil, nil)
		require.Equal(t, 400, r.Status, q)
	}
	r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt/"+uuid.NewString(), nil, nil)
	require.Equal(t, 404, r.Status)
}

func TestGetShowsEveryStage(t *testing.T) {
	t.Parallel()
	// Transfers take an hour to process here, so the assessment rests at REGISTERED.
	e := et.Start(t, et.Options{Sim: kytsim.Options{TransferDelay: time.Hour}})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	e.ReportTx(v, et.TxHash("0xslow"))
	id := e.Assess(v, "")
	require.Eventually(t, func() bool {
		return e.Get(id).RiskAssessment.ChainalysisKYT.Status == "REGISTERED"
	}, wait, 20*time.Millisecond)
	k := e.Get(id).RiskAssessment.ChainalysisKYT
	require.NotNil(t, k.ExternalID)
	require.Nil(t, k.AlertCount, "null until PROCESSED")
	require.Nil(t, k.AssessedAt)
	require.Nil(t, k.USDPrice)
	require.Empty(t, e.Receiver.For(id), "no callback before a terminal state")
}

func TestCallbackOnRegisteredOption(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.CallbackOnRegistered = true }})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	e.ReportTx(v, et.TxHash("0xreg"))
	id := e.Assess(v, "")
	e.Receiver.Terminal(t, id, wait)
	// The REGISTERED callback has its own delivery job: it may arrive before or after the
	// terminal one (the README says so); both arrive.
	e.Receiver.Wait(t, wait, "both callbacks", func([]et.Received) bool { return len(e.Receiver.For(id)) >= 2 })
	got := e.Receiver.For(id)
	require.Len(t, got, 2)
	byStatus := map[string]et.Received{}
	for _, g := range got {
		byStatus[g.Data.RiskAssessment.ChainalysisKYT.Status] = g
	}
	require.Contains(t, byStatus, "REGISTERED")
	require.Contains(t, byStatus, "PROCESSED")
	require.Nil(t, byStatus["REGISTERED"].Data.RiskAssessment.ChainalysisKYT.AlertCount)
	require.NotEqual(t, got[0].ID, got[1].ID, "two callbacks, two webhook-ids")
}

func TestChainalysisRefusalsEndInError(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	// What cannot be an address of the network is refused before anything is stored.
	bad, _ := json.Marshal(et.VerificationBody("ETH", "", "1", "not-an-ethereum-address"))
	r := e.Client.Do("POST", "/v1/verifications", bad, nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "payload.ivms101.beneficiary.accountNumber[0]")
	// 400: KYT refuses an address the enclave lets through: without its 0x, as the VerifyVASP
	// page writes one, and sent to Chainalysis as written.
	v := e.CreateOutgoing("ETH", "", "1", "0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id := e.Assess(v, "")
	k := e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "ERROR", k.Status)
	require.Equal(t, "KYT-BAD-REQUEST", k.Error.Code)
	require.Contains(t, k.Error.Message, "not a valid Ethereum address", "Chainalysis's reason is kept")
	require.Nil(t, k.ExternalID, "not issued when registration failed")
	require.Nil(t, k.AlertCount)

	// 403: a KYT key Chainalysis does not accept.
	e2 := et.Start(t, et.Options{Config: func(c *config.Config) { c.KYTAPIKey = "revoked-key" }})
	v2 := e2.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id2 := e2.Assess(v2, "")
	k2 := e2.Receiver.Terminal(t, id2, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "ERROR", k2.Status)
	require.Equal(t, "KYT-FORBIDDEN", k2.Error.Code)
	require.Contains(t, k2.Error.Message, "API key")
	require.NotContains(t, e2.Logs.String(), "revoked-key", "the key never reaches a log line")
}

func TestTimeoutEndsInError(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{TransferDelay: time.Hour},
		Config: func(c *config.Config) { c.KYTMaxAge = 2 * time.Second }})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	e.ReportTx(v, et.TxHash("0xnever"))
	id := e.Assess(v, "")
	k := e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "ERROR", k.Status)
	require.Equal(t, "KYT-TIMEOUT", k.Error.Code)
	require.NotNil(t, k.ExternalID, "it was registered, never processed")
	require.Len(t, e.Receiver.For(id), 1)
}

func TestChainalysisFaultsAreSurvived(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{Seed: 42, Faults: kytsim.Faults{ErrorRate: 0.3, RateLimitRate: 0.1}}})
	const n = 30
	ids := make([]string, 0, n)
	for i := range n {
		addr := fmt.Sprintf("0x%040x", i+1)
		v := e.CreateOutgoing("ETH", "", "1", addr)
		if i%2 == 0 {
			e.ReportTx(v, et.TxHash(fmt.Sprintf("0xtx%d", i)))
		}
		ids = append(ids, e.Assess(v, ""))
	}
	// A burst of 429s with Retry-After in the middle.
	e.Sim.SetFaults(kytsim.Faults{RateLimitRate: 1, RetryAfterSeconds: 1})
	time.Sleep(300 * time.Millisecond)
	e.Sim.SetFaults(kytsim.Faults{ErrorRate: 0.3})
	for _, id := range ids {
		k := e.Receiver.Terminal(t, id, 60*time.Second).Data.RiskAssessment.ChainalysisKYT
		require.Equal(t, "PROCESSED", k.Status, "%s: %+v", id, k.Error)
	}
	failures := 0
	for _, r := range e.Sim.Requests() {
		if r.Status >= 429 {
			failures++
		}
	}
	require.Positive(t, failures, "faults were injected")
}

func TestChainalysisOutageIsSurvived(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Sim: kytsim.Options{Faults: kytsim.Faults{Down: true}}})
	v := e.CreateOutgoing("BTC", "", "1", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH")
	id := e.Assess(v, "")
	require.Eventually(t, func() bool { return len(e.Sim.Requests()) >= 3 }, wait, 10*time.Millisecond, "retried while down")
	require.Empty(t, e.Receiver.For(id))
	e.Sim.SetFaults(kytsim.Faults{})
	k := e.Receiver.Terminal(t, id, wait).Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount)
}

func TestReceiverFaultsAndRedelivery(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Tuning: app.Tuning{CallbackSchedule: []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond}}})
	// First: 500, then a hang past the delivery timeout is too slow for a test; a refused
	// answer and a 503 with Retry-After 0 stand for both; then success.
	e.Receiver.Respond(func(n int, _ *http.Request) int {
		return map[int]int{1: 500, 2: 503}[n] + map[bool]int{true: 200}[n > 2]
	})
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id := e.Assess(v, "")
	got := e.Receiver.Wait(t, wait, "three deliveries", func(r []et.Received) bool { return len(r) >= 3 })
	require.Equal(t, got[0].ID, got[1].ID, "a retry carries the same webhook-id")
	require.Equal(t, got[0].ID, got[2].ID)
	require.Equal(t, got[0].Body, got[2].Body, "the payload is frozen")
	require.Eventually(t, func() bool {
		var st string
		e.DB.Get(&st, `SELECT status FROM callbacks WHERE request_id = $1`, id)
		return st == "DELIVERED"
	}, wait, 10*time.Millisecond)

	// A receiver that is down for good: FAILED after the last attempt, then redelivered.
	e.Receiver.Respond(func(int, *http.Request) int { return 502 })
	v2 := e.CreateOutgoing("ETH", "", "2", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id2 := e.Assess(v2, "")
	type rec struct {
		ID             string
		Status         string
		Attempts       int
		LastStatusCode *int
		LastError      *string
	}
	var failed rec
	require.Eventually(t, func() bool {
		r := e.Client.Do("GET", "/v1/callbacks?status=FAILED&requestId="+id2, nil, nil)
		var p struct{ Data []rec }
		json.Unmarshal(r.Body, &p)
		if len(p.Data) == 1 {
			failed = p.Data[0]
			return true
		}
		return false
	}, wait, 20*time.Millisecond)
	require.Equal(t, 3, failed.Attempts)
	require.Equal(t, 502, *failed.LastStatusCode)
	require.Equal(t, "answered 502", *failed.LastError)

	e.Receiver.Respond(nil)
	r := e.Client.Do("POST", "/v1/callbacks/"+failed.ID+"/redeliver", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"status":"PENDING"`)
	require.Eventually(t, func() bool {
		var st string
		e.DB.Get(&st, `SELECT status FROM callbacks WHERE id = $1`, failed.ID)
		return st == "DELIVERED"
	}, wait, 10*time.Millisecond)
	deliveries := e.Receiver.For(id2)
	require.Len(t, deliveries, 4)
	for _, d := range deliveries {
		require.Equal(t, failed.ID, d.ID, "every delivery of one callback has its id")
	}
	// A DELIVERED callback is replayed when asked (the receiver lost it): a new attempt with
	// the same webhook-id and body, the redelivery counted on the record and logged.
	r = e.Client.Do("POST", "/v1/callbacks/"+failed.ID+"/redeliver", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), `"redeliveries":2`)
	got = e.Receiver.Wait(t, wait, "the replay", func(r []et.Received) bool { return len(e.Receiver.For(id2)) == 5 })
	replay := e.Receiver.For(id2)
	require.Equal(t, failed.ID, replay[4].ID, "the same webhook-id")
	require.Equal(t, replay[3].Body, replay[4].Body, "the same frozen payload")
	require.Contains(t, e.Logs.String(), "callback redelivered")
	require.Eventually(t, func() bool {
		var st string
		e.DB.Get(&st, `SELECT status FROM callbacks WHERE id = $1`, failed.ID)
		return st == "DELIVERED"
	}, wait, 10*time.Millisecond)
	// One being delivered is not started twice.
	_, err := e.DB.Exec(`UPDATE callbacks SET status = 'PENDING' WHERE id = $1`, failed.ID)
	require.NoError(t, err)
	r = e.Client.Do("POST", "/v1/callbacks/"+failed.ID+"/redeliver", nil, nil)
	require.Equal(t, 400, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "is PENDING; a FAILED or DELIVERED one can be redelivered")
	_, err = e.DB.Exec(`UPDATE callbacks SET status = 'DELIVERED' WHERE id = $1`, failed.ID)
	require.NoError(t, err)

	// In bulk, by the list's filters: bounded by max, audited in the log.
	r = e.Client.Do("POST", "/v1/callbacks/redeliver", []byte(`{"status":"delivered","max":1}`), nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var bulk struct {
		Redelivered int
		More        bool
		Callbacks   []struct{ ID, PreviousStatus string }
	}
	require.NoError(t, json.Unmarshal(r.Body, &bulk))
	require.Equal(t, 1, bulk.Redelivered)
	require.True(t, bulk.More, "two were DELIVERED, max was 1")
	require.Equal(t, failed.ID, bulk.Callbacks[0].ID, "newest first")
	require.Equal(t, "DELIVERED", bulk.Callbacks[0].PreviousStatus)
	e.Receiver.Wait(t, wait, "the bulk replay", func([]et.Received) bool { return len(e.Receiver.For(id2)) == 6 })
	require.Contains(t, e.Logs.String(), "callbacks redelivered by filter")
	require.Contains(t, e.Logs.String(), failed.ID+":DELIVERED")
	for body, field := range map[string]string{`{}`: "a filter is required", `{"status":"FAILED","max":0}`: "max:",
		`{"status":"FAILED","max":1001}`: "max:", `{"status":"SOMETIMES"}`: "status:", `{"requestId":"x"}`: "requestId:"} {
		r = e.Client.Do("POST", "/v1/callbacks/redeliver", []byte(body), nil)
		require.Equal(t, 400, r.Status, body)
		require.Contains(t, string(r.Body), field, body)
	}
	r = e.Client.Do("POST", "/v1/callbacks/"+uuid.NewString()+"/redeliver", nil, nil)
	require.Equal(t, 404, r.Status)
	r = e.Client.Do("GET", "/v1/callbacks?status=SOMETIMES", nil, nil)
	require.Equal(t, 400, r.Status)
}

func TestReceiverTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Tuning: app.Tuning{CallbackTimeout: time.Second}})
	e.Receiver.Respond(func(n int, _ *http.Request) int {
		if n == 1 {
			return 0 // hang: the enclave gives up after its delivery timeout
		}
		return 204
	})
	_ = kytjob.APITypeAttempt
	v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	id := e.Assess(v, "")
	got := e.Receiver.Wait(t, 40*time.Second, "a second delivery after a timeout", func(r []et.Received) bool { return len(r) >= 2 })
	require.Equal(t, got[0].ID, got[1].ID)
	require.Eventually(t, func() bool {
		var st string
		e.DB.Get(&st, `SELECT status FROM callbacks WHERE request_id = $1`, id)
		return st == "DELIVERED"
	}, wait, 10*time.Millisecond)
}

// TestAcceptDoesNotWaitForThePipeline holds the only connection of the workers' pool: the API
// still accepts and answers, the assessment waits PENDING, and it completes once the pipeline
// has a connection again.
func TestAcceptDoesNotWaitForThePipeline(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{Config: func(c *config.Config) { c.PipelineConnections = 1 }})
	held, err := e.Pipeline.Conn(context.Background())
	require.NoError(t, err)

	v := e.CreateOutgoing("eth", "Ethereum", "2", "0x00000000000000000000000000000000000000aa")
	id := e.Assess(v, "")
	got := e.Get(id)
	require.Equal(t, "PENDING", got.RiskAssessment.ChainalysisKYT.Status, "the pipeline cannot record anything yet")
	list := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt?verificationUuid="+v, nil, nil)
	require.Equal(t, 200, list.Status, "%s", list.Body)
	require.Empty(t, e.Receiver.For(id))

	require.NoError(t, held.Close())
	cb := e.Receiver.Terminal(t, id, wait)
	require.Equal(t, "PROCESSED", cb.Data.RiskAssessment.ChainalysisKYT.Status)
	require.Equal(t, cb.Data, e.Get(id))
}

// TestCallbackRetryScheduleAsRun measures the schedule a failing callback is retried on, with
// the enclave's own (callback.DefaultSchedule): the gap between the first two deliveries as
// the receiver saw them, then each later wait as the enclave set it (the callback's
// next_attempt_at, read as soon as the attempt is recorded), each later attempt run at once
// rather than hours later. README's figures come from its -v output:
//
//	go test ./internal/kytjob -run TestCallbackRetryScheduleAsRun -v
func TestCallbackRetryScheduleAsRun(t *testing.T) {
	et.Slow(t, "waits for the first retry, about 5 s")
	t.Parallel()
	e := et.Start(t, et.Options{Tuning: app.Tuning{CallbackSchedule: callback.DefaultSchedule}})
	var mu sync.Mutex
	var arrived []time.Time
	e.Receiver.Respond(func(int, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		arrived = append(arrived, time.Now())
		return 503
	})
	id := e.Assess(e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"), "")
	var cb string
	require.Eventually(t, func() bool {
		return e.DB.Get(&cb, `SELECT id FROM callbacks WHERE request_id = $1`, id) == nil
	}, wait, 20*time.Millisecond)
	// The wait the enclave chose after attempt n: the callback is due again at next_attempt_at.
	snoozed := func(n int) time.Duration {
		var d time.Duration
		require.Eventually(t, func() bool {
			var attempts int
			var ms float64
			err := e.DB.QueryRow(`SELECT attempts, extract(epoch FROM next_attempt_at - now()) * 1000
				FROM callbacks WHERE id = $1 AND status = 'PENDING' AND NOT in_flight`, cb).Scan(&attempts, &ms)
			d = time.Duration(ms) * time.Millisecond
			return err == nil && attempts == n
		}, 2*wait, 100*time.Millisecond, "attempt %d", n) // each wait lasts 5 s at least
		return d
	}
	// The first retry is due 5 s after the first attempt: too short a wait to catch reliably
	// in the job table on a loaded machine, so it is measured where it lands.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(arrived) >= 2 }, 4*wait, 50*time.Millisecond,
		"two deliveries")
	mu.Lock()
	t.Logf("attempt 1: at once (the callback was enqueued with the assessment's terminal state)")
	t.Logf("attempt 2: %s after attempt 1, as the receiver saw it", arrived[1].Sub(arrived[0]).Round(10*time.Millisecond))
	mu.Unlock()
	for n := 2; n < len(callback.DefaultSchedule); n++ {
		d := snoozed(n)
		t.Logf("attempt %d: %s after attempt %d (scheduled %s)", n+1, d.Round(time.Second), n, callback.DefaultSchedule[n])
		// ±10 % jitter around the schedule, and a second for the attempt itself.
		require.InDelta(t, callback.DefaultSchedule[n].Seconds(), d.Seconds(), callback.DefaultSchedule[n].Seconds()/10+1, "attempt %d", n+1)
		_, err := e.DB.Exec(`UPDATE callbacks SET next_attempt_at = now() WHERE id = $1 AND NOT in_flight`, cb)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		var st string
		return e.DB.Get(&st, `SELECT status FROM callbacks WHERE id = $1`, cb) == nil && st == "FAILED"
	}, wait, 20*time.Millisecond, "FAILED after the last attempt")
	t.Logf("after attempt %d: FAILED (redeliver it with POST /v1/callbacks/{id}/redeliver)", len(callback.DefaultSchedule))
}

// TestAssessmentsEndingTogetherShareATransactionAndABadOneFailsAlone: runs that end at the
// same moment are stored in one transaction; when the database refuses one of them (here a
// usdPrice that is not a number), the others still end, each with one terminal callback, and
// the refused one stays open for its job to try again. The same assessment twice in a batch
// ends once.
func TestAssessmentsEndingTogetherShareATransactionAndABadOneFailsAlone(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{APIOnly: true})
	var ids []string
	for range 3 {
		ids = append(ids, e.Assess(e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"), ""))
	}
	out := e.App.Assessments.EndTogether(context.Background(), []kytjob.End{
		{RequestID: ids[0], USDPrice: "1.50"}, {RequestID: ids[1], USDPrice: "not a number"},
		{RequestID: ids[2], Code: "KYT-TIMEOUT"}, {RequestID: ids[0], USDPrice: "2"},
	})
	require.NoError(t, out[0])
	require.ErrorContains(t, out[1], "numeric")
	require.NoError(t, out[2])
	require.ErrorIs(t, out[3], assessment.ErrNotOpen, "the second move of one assessment finds it ended")
	status := func(id string) (st string, usd *string) {
		require.NoError(t, e.DB.QueryRow(`SELECT status, usd_price::text FROM kyt_results WHERE request_id = $1`, id).Scan(&st, &usd))
		return st, usd
	}
	st, usd := status(ids[0])
	require.Equal(t, "PROCESSED", st)
	require.Equal(t, "1.50", *usd, "the first move's price, digit for digit")
	st, _ = status(ids[1])
	require.Equal(t, "PENDING", st, "refused: left for its job")
	st, _ = status(ids[2])
	require.Equal(t, "ERROR", st)
	var callbacks []string
	require.NoError(t, e.DB.Select(&callbacks, `SELECT request_id::text FROM callbacks WHERE terminal ORDER BY request_id`))
	want := []string{ids[0], ids[2]}
	slices.Sort(want)
	require.Equal(t, want, callbacks, "one terminal callback for each assessment ended, none for the refused one")
}
