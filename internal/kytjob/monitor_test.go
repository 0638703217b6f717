package kytjob_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

// simPut changes kytsim's world as Chainalysis's would change: PUT /_sim/{what}.
func simPut(t *testing.T, e *et.Enclave, path, body string) map[string]any {
	t.Helper()
	req, err := http.NewRequest("PUT", e.Sim.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Token", et.KYTKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.Equal(t, 200, resp.StatusCode, "%v", out)
	return out
}

// sentTransfer has a sent TRANSFER to address processed and returns its requestId.
func sentTransfer(t *testing.T, e *et.Enclave, address, seed string) string {
	t.Helper()
	v := e.CreateOutgoing("ETH", "", "1", address)
	e.ReportTx(v, et.TxHash(seed))
	id := e.Assess(v, "")
	e.Receiver.Terminal(t, id, wait)
	return id
}

// sentTransfers has n sent TRANSFERs processed at once, to the addresses 0x…first, 0x…first+1, …,
// and returns their requestIds.
func sentTransfers(t *testing.T, e *et.Enclave, first, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		addr := fmt.Sprintf("0x%040x", first+i)
		v := e.CreateOutgoing("ETH", "", "1", addr)
		e.ReportTx(v, et.TxHash(addr))
		ids[i] = e.Assess(v, "")
	}
	for _, id := range ids {
		e.Receiver.Terminal(t, id, wait)
	}
	return ids
}

func alertCallbacks(e *et.Enclave, requestID string) []et.Received {
	var out []et.Received
	for _, g := range e.Receiver.For(requestID) {
		if g.Type == webhook.TypeKYTAlert {
			out = append(out, g)
		}
	}
	return out
}

func monitored(t *testing.T, o et.Options) *et.Enclave {
	t.Helper()
	edit := o.Config
	o.Config = func(c *config.Config) {
		c.KYTMonitorInterval = 100 * time.Millisecond
		if edit != nil {
			edit(c)
		}
	}
	return et.Start(t, o)
}

// TestMonitoringCallsBackAlertsRaisedLater: a transfer processed clean, then its address
// identified as sanctioned → exactly one CHAINALYSIS_KYT_ALERT with the new alert, the
// assessment as it now stands; none for the alerts an assessment already had; an alert of a
// transfer we never registered is counted, not stored; a dismissal in KYT is followed.
func TestMonitoringCallsBackAlertsRaisedLater(t *testing.T) {
	t.Parallel()
	e := monitored(t, et.Options{})
	const later = "0x00000000000000000000000000000000000000aa"
	v := e.CreateOutgoing("ETH", "", "1", later)
	e.ReportTx(v, et.TxHash("later"))
	clean := e.Assess(v, "")
	risky := sentTransfer(t, e, "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", "risky") // one alert at once
	e.Receiver.Terminal(t, clean, wait)
	require.Zero(t, *e.Get(clean).RiskAssessment.ChainalysisKYT.AlertCount)

	// A transfer of a user we never registered, to a sanctioned address.
	req, _ := http.NewRequest("POST", e.Sim.URL+"/v2/users/someone-else/transfers", strings.NewReader(
		`{"network":"Ethereum","asset":"ETH","transferReference":"0xfeed:0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1","direction":"sent","assetAmount":1}`))
	req.Header.Set("Token", et.KYTKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var stranger struct{ ExternalID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&stranger))
	resp.Body.Close()
	req, _ = http.NewRequest("GET", e.Sim.URL+"/v2/transfers/"+stranger.ExternalID+"/alerts", nil) // processed: its alert raised
	req.Header.Set("Token", et.KYTKey)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()

	raised := simPut(t, e, "/_sim/addresses/"+later, `{"category":"sanctioned entity","cluster":"OFAC SDN Later 2026-11-23"}`)
	require.Len(t, raised["alertsRaised"], 1)
	alertID := raised["alertsRaised"].([]any)[0].(string)

	e.Receiver.Wait(t, wait, "the CHAINALYSIS_KYT_ALERT", func([]et.Received) bool { return len(alertCallbacks(e, clean)) > 0 })
	cb := alertCallbacks(e, clean)[0]
	require.NoError(t, cb.Err)
	k := cb.Data.RiskAssessment.ChainalysisKYT
	require.Equal(t, "PROCESSED", k.Status)
	require.Equal(t, 1, *k.AlertCount, "the assessment as it now stands")
	require.Len(t, cb.Data.RiskAssessment.ChainalysisKYTAlerts, 1, "only the new alert")
	a := cb.Data.RiskAssessment.ChainalysisKYTAlerts[0]
	require.Equal(t, alertID, a.AlertID)
	require.Equal(t, "SEVERE", a.AlertLevel)
	require.Equal(t, "OFAC SDN Later 2026-11-23", *a.ServiceName)
	require.Equal(t, webhook.SourceMonitoring, a.Source)
	require.Equal(t, "Unreviewed", *a.AlertStatus)
	require.Equal(t, *k.ExternalID, a.ExternalID)

	// Dismissed in KYT: the status follows, wherever the alert is shown; no new callback.
	simPut(t, e, "/_sim/alerts/"+alertID, `{"alertStatus":"Dismissed","alertStatusCreatedBy":"analyst@vasp"}`)
	require.Eventually(t, func() bool {
		alerts := e.Get(clean).RiskAssessment.ChainalysisKYTAlerts
		return len(alerts) == 1 && alerts[0].AlertStatus != nil && *alerts[0].AlertStatus == "Dismissed"
	}, wait, 50*time.Millisecond)
	r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt/alerts?source=MONITORING&alertStatus=Dismissed", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), alertID)

	// Several syncs later: still one KYT_ALERT, none for the risky transfer's own alert, the
	// stranger's alert counted as unmatched.
	metrics := func() string { return string(e.Client.Do("GET", "/metrics", nil, nil).Body) }
	require.Eventually(t, func() bool {
		return strings.Contains(metrics(), `enclave_kyt_monitor_alerts_total{outcome="unmatched"}`)
	}, wait, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // three more intervals
	require.Len(t, alertCallbacks(e, clean), 1)
	require.Empty(t, alertCallbacks(e, risky))
	var stored int
	require.NoError(t, e.DB.Get(&stored, `SELECT count(*) FROM kyt_alerts`))
	require.Equal(t, 2, stored, "the risky transfer's and the new one; not the stranger's")
	require.Contains(t, metrics(), "enclave_kyt_monitor_lag_seconds")
}

// TestConcurrentSyncsCallBackOnce: syncs run at once from two enclave processes on one
// database, again and again, store each alert once and call back once per new alert.
func TestConcurrentSyncsCallBackOnce(t *testing.T) {
	t.Parallel()
	a := et.Start(t, et.Options{Tuning: app.Tuning{KYT: kytjob.Config{MonitorPage: 2}}})
	b := et.Start(t, et.Options{DSN: a.DSN, APIOnly: true, Tuning: app.Tuning{KYT: kytjob.Config{MonitorPage: 2}},
		Config: func(c *config.Config) { c.KYTAPIURL = a.Sim.URL + "/api/kyt" }}) // one Chainalysis
	ids := sentTransfers(t, a, 0xbb0, 4)
	for i := range ids {
		simPut(t, a, fmt.Sprintf("/_sim/addresses/0x%040x", 0xbb0+i), `{"category":"stolen funds","cluster":"Heist"}`)
	}
	var wg sync.WaitGroup
	for _, e := range []*et.Enclave{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				require.NoError(t, e.App.Assessments.Sync(context.Background()))
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		a.Receiver.Wait(t, wait, "the alert callback", func([]et.Received) bool { return len(alertCallbacks(a, id)) > 0 })
	}
	time.Sleep(200 * time.Millisecond)
	for _, id := range ids {
		require.Len(t, alertCallbacks(a, id), 1, id)
	}
	var callbacks int
	require.NoError(t, a.DB.Get(&callbacks, `SELECT count(*) FROM callbacks WHERE callback_type = 'CHAINALYSIS_KYT_ALERT'`))
	require.Equal(t, len(ids), callbacks)
}

// TestInterruptedSyncsLoseAndDoubleNothing: a sync cut off between reading a page and storing
// it, one that dies inside an assessment's transaction, and syncs meeting 5xx and 429 in the
// middle of paging: after they are run again, every new alert is stored once and sent in
// exactly one callback.
func TestInterruptedSyncsLoseAndDoubleNothing(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var cancelAt string // the hook step at which to cut the running sync off
	var cancel context.CancelFunc
	hook := func(ctx context.Context, step, id string) {
		mu.Lock()
		defer mu.Unlock()
		if step != cancelAt {
			return
		}
		cancelAt = ""
		switch step {
		case "page":
			cancel() // the process is gone between reading the page and storing it
		case "monitored":
			panic("killed inside the transaction")
		}
	}
	e := et.Start(t, et.Options{Tuning: app.Tuning{KYT: kytjob.Config{Hook: hook, MonitorPage: 1}}})
	ids := sentTransfers(t, e, 0xcc0, 3)
	for i := range ids {
		simPut(t, e, fmt.Sprintf("/_sim/addresses/0x%040x", 0xcc0+i), `{"category":"ransomware","cluster":"Locker"}`)
	}
	runSync := func() error {
		ctx, c := context.WithCancel(context.Background())
		defer c()
		mu.Lock()
		cancel = c
		mu.Unlock()
		defer func() { recover() }() //nolint:errcheck // the "killed" sync
		return e.App.Assessments.Sync(ctx)
	}
	count := func(q string) int {
		var n int
		require.NoError(t, e.DB.Get(&n, q))
		return n
	}
	mu.Lock()
	cancelAt = "page"
	mu.Unlock()
	require.Error(t, runSync())
	require.Zero(t, count(`SELECT count(*) FROM kyt_alerts WHERE source = 'MONITORING'`), "nothing stored from the page read")

	mu.Lock()
	cancelAt = "monitored"
	mu.Unlock()
	runSync() //nolint:errcheck // killed
	require.Zero(t, count(`SELECT count(*) FROM callbacks WHERE callback_type = 'CHAINALYSIS_KYT_ALERT'`), "the killed transaction left nothing")

	e.Sim.SetFaults(kytsim.Faults{ErrorRate: 0.4, RateLimitRate: 0.1}) // a 429 holds every call back a second
	failures := 0
	for attempt := 0; ; attempt++ {
		require.Less(t, attempt, 200)
		err := runSync()
		if err == nil {
			break
		}
		failures++
	}
	e.Sim.SetFaults(kytsim.Faults{})
	require.NoError(t, runSync())
	require.NoError(t, runSync())
	t.Logf("%d syncs failed on 5xx/429 before one went through", failures)
	require.Positive(t, failures)

	require.Equal(t, 3, count(`SELECT count(*) FROM kyt_alerts WHERE source = 'MONITORING'`))
	require.Equal(t, 3, count(`SELECT count(*) FROM callbacks WHERE callback_type = 'CHAINALYSIS_KYT_ALERT'`))
	for _, id := range ids {
		e.Receiver.Wait(t, wait, "the alert callback of "+id, func([]et.Received) bool { return len(alertCallbacks(e, id)) == 1 })
		require.Len(t, alertCallbacks(e, id)[0].Data.RiskAssessment.ChainalysisKYTAlerts, 1)
	}
}

// TestCounterpartyRisk: the counterparty's KYT user, its riskScore following its alerts; an
// unknown one is NOT-FOUND.
func TestCounterpartyRisk(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	r := e.Client.Do("GET", "/v1/counterparties/"+et.TheirVasp+"/chainalysis-kyt", nil, nil)
	require.Equal(t, 404, r.Status, "%s", r.Body)
	require.Contains(t, string(r.Body), "NOT-FOUND")
	sentTransfer(t, e, "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", "cp")
	r = e.Client.Do("GET", "/v1/counterparties/"+et.TheirVasp+"/chainalysis-kyt", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var u struct {
		CounterpartyVaspID, UserID, RiskScore, Score string
		ExposureDetails                              []struct {
			Cluster            struct{ Name, Category string }
			SentDirectExposure json.Number
		}
	}
	require.NoError(t, json.Unmarshal(r.Body, &u))
	require.Equal(t, et.TheirVasp, u.CounterpartyVaspID)
	require.Equal(t, et.TheirVasp, u.UserID)
	require.Equal(t, "SEVERE", u.RiskScore)
	require.Equal(t, "red", u.Score)
	require.Equal(t, "sanctioned entity", u.ExposureDetails[0].Cluster.Category)
}

// TestAlertsBehindTheCursorAreStillPulledIn: an alert the first pass no longer reads (created
// before the cursor, as one raised while its assessment was still open would be) is stored and
// called back by the day-long second pass, once.
func TestAlertsBehindTheCursorAreStillPulledIn(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	ids := sentTransfers(t, e, 0xee0, 1)
	ctx := context.Background()
	require.NoError(t, e.App.Assessments.Sync(ctx))
	simPut(t, e, fmt.Sprintf("/_sim/addresses/0x%040x", 0xee0), `{"category":"mixing","cluster":"Tumbler"}`)
	_, err := e.DB.Exec(`UPDATE kyt_monitor SET cursor = now() + interval '1 hour'`)
	require.NoError(t, err)
	require.NoError(t, e.App.Assessments.Sync(ctx))
	require.NoError(t, e.App.Assessments.Sync(ctx))
	e.Receiver.Wait(t, wait, "the alert callback", func([]et.Received) bool { return len(alertCallbacks(e, ids[0])) > 0 })
	time.Sleep(100 * time.Millisecond)
	require.Len(t, alertCallbacks(e, ids[0]), 1)
	require.Equal(t, "HIGH", alertCallbacks(e, ids[0])[0].Data.RiskAssessment.ChainalysisKYTAlerts[0].AlertLevel)
}

// TestSyncReadsAnAPIWithoutSortOrTotal: a KYT that refuses sort=createdAt (400) and answers
// pages without a total is read in its default order, page by page until a short page.
func TestSyncReadsAnAPIWithoutSortOrTotal(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var queries []string
	alert := func(i int) map[string]any {
		return map[string]any{"alertIdentifier": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "userId": et.TheirVasp,
			"transferReference": fmt.Sprintf("0xabc:%d", i%2), "asset": "ETH", "level": "HIGH", "exposureType": "DIRECT",
			"alertStatus": "Unreviewed", "alertAmountUsd": 10, "category": "mixing", "service": "Tumbler",
			"createdAt": time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), "direction": "SENT"}
	}
	all := []map[string]any{alert(1), alert(2), alert(3)}
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		q := r.URL.Query()
		if q.Get("sort") != "" {
			w.WriteHeader(400)
			w.Write([]byte(`{"message":"unknown sort"}`))
			return
		}
		var limit, offset int
		fmt.Sscan(q.Get("limit"), &limit)
		fmt.Sscan(q.Get("offset"), &offset)
		page := []map[string]any{}
		for i := offset; i < len(all) && len(page) < limit; i++ {
			page = append(page, all[i])
		}
		json.NewEncoder(w).Encode(map[string]any{"data": page}) // no total
	}))
	defer fake.Close()
	e := et.Start(t, et.Options{Tuning: app.Tuning{KYT: kytjob.Config{MonitorPage: 2}},
		Config: func(c *config.Config) { c.KYTAPIURL = fake.URL }})
	var ids []string
	for i := range 2 {
		v := e.CreateOutgoing("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
		id := fmt.Sprintf("00000000-0000-4000-9000-%012d", i)
		_, err := e.DB.Exec(`INSERT INTO kyt_results (request_id, verification_uuid, counterparty_vasp_id, api_type, user_id, direction,
			network, asset, amount, transfer_ref, output_address, status, alert_count, external_id, created_at)
			VALUES ($1, $2, $3, 'TRANSFER', $3, 'OUTGOING', 'ETHEREUM', 'ETH', 1, $4, '0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1',
			'PROCESSED', 0, 'ext', now() - interval '1 minute')`, id, v, et.TheirVasp, fmt.Sprintf("0xabc:%d", i))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, e.App.Assessments.Sync(context.Background()))
	var stored int
	require.NoError(t, e.DB.Get(&stored, `SELECT count(*) FROM kyt_alerts WHERE source = 'MONITORING'`))
	require.Equal(t, 3, stored, "every page read, the last one short")
	// One callback per assessment and page with new alerts: each alert in exactly one.
	sent := func() map[string]int {
		seen := map[string]int{}
		for _, id := range ids {
			for _, cb := range alertCallbacks(e, id) {
				for _, a := range cb.Data.RiskAssessment.ChainalysisKYTAlerts {
					seen[a.AlertID]++
				}
			}
		}
		return seen
	}
	e.Receiver.Wait(t, wait, "the alert callbacks", func([]et.Received) bool { return len(sent()) == 3 })
	time.Sleep(100 * time.Millisecond)
	for id, n := range sent() {
		require.Equal(t, 1, n, "alert %s sent once", id)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, queries[0], "sort=createdAt")
	require.NotContains(t, queries[1], "sort=")
}
