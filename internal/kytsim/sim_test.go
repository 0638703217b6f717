package kytsim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/kytsim"
)

type answer struct {
	Status int
	Header http.Header
	Body   []byte
	JSON   map[string]any
}

func call(t *testing.T, base, token, method, path, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Token", token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, Header: resp.Header, Body: b}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.Decode(&a.JSON)
	return a
}

const transferBody = `{"network":"Ethereum","asset":"ETH","transferReference":"0xaaa:0xbb3fd383d1c5540e52ef0a7bcb9433375793aeaf","direction":"sent","assetAmount":1}`

func TestRegistrationIsIdempotent(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	a := call(t, s.URL, "k", "POST", "/v2/users/u1/transfers", transferBody)
	require.Equal(t, 200, a.Status, "%s", a.Body)
	id := a.JSON["externalId"].(string)
	require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-3[0-9a-f]{3}-`, id, "a version 3 (name-based) UUID")

	// Processing raises one alert; registering again returns the same id and raises none.
	require.Equal(t, 200, call(t, s.URL, "k", "GET", "/v2/transfers/"+id+"/alerts", "").Status)
	b := call(t, s.URL, "k", "POST", "/v2/users/u1/transfers", transferBody)
	require.Equal(t, id, b.JSON["externalId"])
	call(t, s.URL, "k", "GET", "/v2/transfers/"+id+"/alerts", "")
	require.Equal(t, json.Number("1"), call(t, s.URL, "k", "GET", "/v1/alerts", "").JSON["total"])

	// Another user, or another direction, is another transfer.
	c := call(t, s.URL, "k", "POST", "/v2/users/u2/transfers", transferBody)
	require.NotEqual(t, id, c.JSON["externalId"])

	att := `{"network":"Bitcoin","asset":"BTC","address":"1H7aVb2RZiBmdbnzazQgVj2hWR3eEZPg6v","attemptIdentifier":"req-1","assetAmount":0.5,"attemptTimestamp":"2024-01-01T00:00:00Z"}`
	x := call(t, s.URL, "k", "POST", "/v2/users/u1/withdrawal-attempts", att)
	y := call(t, s.URL, "k", "POST", "/v2/users/u1/withdrawal-attempts", att)
	require.Equal(t, x.JSON["externalId"], y.JSON["externalId"])
	require.Equal(t, json.Number("14938.75"), x.JSON["usdAmount"], "0.5 BTC at 29877.50")
}

func TestTransfersProcessAfterTheirDelay(t *testing.T) {
	t.Parallel()
	clk := kytsim.NewManualClock(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	s := kytsim.NewServer(kytsim.Options{APIKey: "k", TransferDelay: 2 * time.Second,
		NetworkDelays: map[string]time.Duration{"bitcoin": 10 * time.Minute}, Now: clk.Now})
	defer s.Close()
	eth := call(t, s.URL, "k", "POST", "/v2/users/u/transfers", transferBody).JSON["externalId"].(string)
	btc := call(t, s.URL, "k", "POST", "/v2/users/u/transfers",
		`{"network":"bitcoin","asset":"BTC","transferReference":"abc:1H7aVb2RZiBmdbnzazQgVj2hWR3eEZPg6v","direction":"received"}`).JSON["externalId"].(string)

	summary := func(id string) map[string]any { return call(t, s.URL, "k", "GET", "/v2/transfers/"+id, "").JSON }
	require.Nil(t, summary(eth)["updatedAt"])
	require.Nil(t, summary(eth)["usdAmount"])
	require.Empty(t, call(t, s.URL, "k", "GET", "/v2/transfers/"+eth+"/alerts", "").JSON["alerts"], "no alerts before processing")

	clk.Add(2 * time.Second)
	sum := summary(eth)
	require.Equal(t, "2026-03-01T00:00:02.000+00:00", sum["updatedAt"])
	require.Equal(t, json.Number("1820.17"), sum["usdAmount"])
	require.Equal(t, json.Number("0"), sum["idx"])
	require.Equal(t, "0xbb3fd383d1c5540e52ef0a7bcb9433375793aeaf", sum["outputAddress"])
	require.Nil(t, summary(btc)["updatedAt"], "Bitcoin waits for confirmations")
	al := call(t, s.URL, "k", "GET", "/v2/transfers/"+eth+"/alerts", "").JSON["alerts"].([]any)
	require.Len(t, al, 1)
	require.Equal(t, "MEDIUM", al[0].(map[string]any)["alertLevel"])
	require.Equal(t, "high risk exchange", al[0].(map[string]any)["category"])
	require.Equal(t, "HIGH RISK EXCHANGE: SimpleSwap.io bb3fd383d1c5540e52ef0a7bcb9433375793aeaf", al[0].(map[string]any)["service"])

	clk.Add(10 * time.Minute)
	require.NotNil(t, summary(btc)["updatedAt"])
	require.NotNil(t, summary(btc)["assetAmount"], "the chain's amount when none was stated")
}

func TestReceivedTransfersAreRatedBySender(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	s.SetTransactionSender("0xfeed", "0x098B716B8Aaf21512996dC57EB0615e2383E2f96")
	id := call(t, s.URL, "k", "POST", "/v2/users/u/transfers",
		`{"network":"Ethereum","asset":"USDT","transferReference":"0xfeed:0xOurDepositAddress","direction":"received","assetAmount":"250"}`).JSON["externalId"].(string)
	call(t, s.URL, "k", "GET", "/v2/transfers/"+id, "")
	al := call(t, s.URL, "k", "GET", "/v2/transfers/"+id+"/alerts", "").JSON["alerts"].([]any)
	require.Len(t, al, 1)
	a := al[0].(map[string]any)
	require.Equal(t, "SEVERE", a["alertLevel"])
	require.Equal(t, "sanctioned entity", a["category"])
	require.Equal(t, json.Number("250.00"), a["alertAmount"])

	// The same through the control endpoint, and an INDIRECT exposure has no service.
	r := call(t, s.URL, "k", "POST", "/_sim/transactions", `{"tx":"0xbeef","inputAddress":"0x2337bBCD5766Bf2A9462D493E9A459b60b41B7f2"}`)
	require.Equal(t, 200, r.Status)
	id = call(t, s.URL, "k", "POST", "/v2/users/u/transfers",
		`{"network":"Ethereum","asset":"ETH","transferReference":"0xbeef:0xOurDepositAddress","direction":"received"}`).JSON["externalId"].(string)
	al = call(t, s.URL, "k", "GET", "/v2/transfers/"+id+"/alerts", "").JSON["alerts"].([]any)
	require.Len(t, al, 1)
	require.Equal(t, "INDIRECT", al[0].(map[string]any)["exposureType"])
	require.Nil(t, al[0].(map[string]any)["service"])
}

func TestTokenIsRequired(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	for _, tok := range []string{"", "wrong"} {
		a := call(t, s.URL, tok, "GET", "/v1/assets", "")
		require.Equal(t, 403, a.Status)
		require.NotEmpty(t, a.JSON["message"])
	}
	require.Equal(t, 403, call(t, s.URL, "wrong", "GET", "/_sim/faults", "").Status)
}

func TestBadRegistrationsAreRefused(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	for name, body := range map[string]string{
		"NotJSON":        `{`,
		"NoNetwork":      `{"asset":"ETH","transferReference":"0x1:0x2","direction":"sent"}`,
		"UnknownNetwork": `{"network":"Narnia","asset":"ETH","transferReference":"0x1:0x2","direction":"sent"}`,
		"BadDirection":   `{"network":"Ethereum","asset":"ETH","transferReference":"0x1:0x2","direction":"SENT"}`,
		"HashOnlyOnEVM":  `{"network":"Ethereum","asset":"ETH","transferReference":"0x1","direction":"sent"}`,
		"AddressOnXLM":   `{"network":"Stellar","asset":"XLM","transferReference":"abc:GABC","direction":"sent"}`,
		"AmountNotNum":   `{"network":"Ethereum","asset":"ETH","transferReference":"0x1:0x2","direction":"sent","assetAmount":"lots"}`,
	} {
		a := call(t, s.URL, "k", "POST", "/v2/users/u/transfers", body)
		require.Equal(t, 400, a.Status, name)
		require.NotEmpty(t, a.JSON["message"], name)
	}
	a := call(t, s.URL, "k", "POST", "/v2/users/u/withdrawal-attempts", `{"network":"Bitcoin","asset":"BTC","address":"1H7aVb2RZiBmdbnzazQgVj2hWR3eEZPg6v","attemptIdentifier":"a"}`)
	require.Equal(t, 400, a.Status)
	require.Contains(t, a.JSON["message"], "assetAmount")
	require.Equal(t, 404, call(t, s.URL, "k", "GET", "/v2/withdrawal-attempts/nope", "").Status)
}

func TestFaults(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k", Seed: 7})
	defer s.Close()

	s.SetFaults(kytsim.Faults{ErrorRate: 1})
	seen := map[int]bool{}
	for range 40 {
		a := call(t, s.URL, "k", "GET", "/v1/assets", "")
		seen[a.Status] = true
	}
	require.Equal(t, map[int]bool{500: true, 503: true}, seen)

	// At run time, through the control endpoint.
	r := call(t, s.URL, "k", "PUT", "/_sim/faults", `{"rateLimitRate":1,"retryAfterSeconds":3}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	a := call(t, s.URL, "k", "GET", "/v1/assets", "")
	require.Equal(t, 429, a.Status)
	require.Equal(t, "3", a.Header.Get("Retry-After"))
	require.Equal(t, 400, call(t, s.URL, "k", "PUT", "/_sim/faults", `{"errorRate":0.7,"rateLimitRate":0.7}`).Status)

	s.SetFaults(kytsim.Faults{Down: true})
	a = call(t, s.URL, "k", "GET", "/v1/assets", "")
	require.Equal(t, 503, a.Status)
	require.Contains(t, a.Header.Get("Content-Type"), "text/html")
	require.Equal(t, 200, call(t, s.URL, "k", "GET", "/_sim/faults", "").Status, "control stays up")

	s.SetFaults(kytsim.Faults{LatencyMillis: 300})
	client := &http.Client{Timeout: 50 * time.Millisecond}
	req, _ := http.NewRequest("GET", s.URL+"/v1/assets", nil)
	req.Header.Set("Token", "k")
	_, err := client.Do(req)
	require.Error(t, err, "added latency makes a short-deadline caller time out")

	// A fraction: with 30% errors, some but not all of 200 requests fail.
	s.SetFaults(kytsim.Faults{ErrorRate: 0.3})
	failed := 0
	for range 200 {
		if call(t, s.URL, "k", "GET", "/v1/assets", "").Status != 200 {
			failed++
		}
	}
	require.Greater(t, failed, 20)
	require.Less(t, failed, 100)

	s.SetFaults(kytsim.Faults{})
	require.Equal(t, 200, call(t, s.URL, "k", "GET", "/v1/assets", "").Status)
}

func TestRiskyFractionIsDeterministic(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k", RiskyFraction: 0.25})
	defer s.Close()
	alerted := map[string]bool{}
	for i := range 400 {
		addr := fmt.Sprintf("0x%040x", i*7919)
		body := fmt.Sprintf(`{"network":"Ethereum","asset":"ETH","address":%q,"attemptIdentifier":"r%d","assetAmount":1,"attemptTimestamp":"2024-01-01T00:00:00Z"}`, addr, i)
		id := call(t, s.URL, "k", "POST", "/v2/users/u/withdrawal-attempts", body).JSON["externalId"].(string)
		alerted[addr] = len(call(t, s.URL, "k", "GET", "/v2/withdrawal-attempts/"+id+"/alerts", "").JSON["alerts"].([]any)) > 0
	}
	n := 0
	for _, v := range alerted {
		if v {
			n++
		}
	}
	require.Greater(t, n, 60, "about a quarter of 400")
	require.Less(t, n, 140, "about a quarter of 400")

	// The same address on another sandbox is rated the same.
	s2 := kytsim.NewServer(kytsim.Options{APIKey: "k", RiskyFraction: 0.25})
	defer s2.Close()
	for addr, want := range alerted {
		body := fmt.Sprintf(`{"network":"Ethereum","asset":"ETH","address":%q,"attemptIdentifier":"x","assetAmount":1,"attemptTimestamp":"2024-01-01T00:00:00Z"}`, addr)
		id := call(t, s2.URL, "k", "POST", "/v2/users/"+addr+"/withdrawal-attempts", body).JSON["externalId"].(string)
		got := len(call(t, s2.URL, "k", "GET", "/v2/withdrawal-attempts/"+id+"/alerts", "").JSON["alerts"].([]any)) > 0
		require.Equal(t, want, got, addr)
		break
	}
}

func TestV1AlertsFilters(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	reg := func(user, addr, id string) {
		body := fmt.Sprintf(`{"network":"Bitcoin","asset":"BTC","address":%q,"attemptIdentifier":%q,"assetAmount":1,"attemptTimestamp":"2024-01-01T00:00:00Z"}`, addr, id)
		r := call(t, s.URL, "k", "POST", "/v2/users/"+user+"/withdrawal-attempts", body)
		require.Equal(t, 200, r.Status, "%s", r.Body)
	}
	reg("alice", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH", "a1") // SEVERE
	reg("alice", "1DP38CC2kf6ewUDaaVd9nBfuAD8SP15g2T", "a2") // HIGH: >$100 sent to darknet market
	reg("bob", "32PUt3ijeewVN2jjoYJqP9ReDfjhqHW3EL", "b1")   // HIGH
	total := func(q string) any { return call(t, s.URL, "k", "GET", "/v1/alerts"+q, "").JSON["total"] }
	require.Equal(t, json.Number("3"), total(""))
	require.Equal(t, json.Number("2"), total("?userId=alice"))
	require.Equal(t, json.Number("2"), total("?level=HIGH"))
	require.Equal(t, json.Number("0"), total("?createdAt_lte=2000-01-01T00:00:00Z"))
	require.Equal(t, json.Number("3"), total("?createdAt_gte=2000-01-01"))
	page := call(t, s.URL, "k", "GET", "/v1/alerts?limit=1&offset=1", "").JSON
	require.Len(t, page["data"], 1)
	require.Equal(t, ">$100 sent directly to darknet market", page["data"].([]any)[0].(map[string]any)["rule"])
	require.Equal(t, 400, call(t, s.URL, "k", "GET", "/v1/alerts?level=high", "").Status)
}

func TestKnownAddressesAreListed(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	a := call(t, s.URL, "k", "GET", "/_sim/addresses", "")
	require.Equal(t, 200, a.Status)
	require.Contains(t, string(a.Body), "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1")
	require.Contains(t, string(a.Body), `"category":"sanctioned entity"`)
}

func TestIllegalAddressFormatIsBadRequest(t *testing.T) {
	t.Parallel()
	s := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer s.Close()
	a := call(t, s.URL, "k", "POST", "/v2/users/u/withdrawal-attempts",
		`{"network":"Ethereum","asset":"ETH","address":"not-an-address","attemptIdentifier":"x","assetAmount":1,"attemptTimestamp":"2024-01-01T00:00:00Z"}`)
	require.Equal(t, 400, a.Status)
	require.Contains(t, a.JSON["message"], "not a valid Ethereum address")
}
