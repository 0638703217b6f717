package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/api"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/internal/seal"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	ourVasp   = "15952089931162059995"
	theirVasp = "20000000000000000001"
	apiKey    = "test-api-key-0123456789"
)

var peerSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("peer-secret-32-bytes-long-000000"))

type bundle struct {
	client *openapitest.Client
	logs   *et.SyncBuffer
	e      *et.Enclave
}

// setup starts the enclave's API as serve wires it, on a fresh database, with no workers: what
// these tests check is answered on the request path.
func setup(t *testing.T) bundle {
	t.Helper()
	e := et.Start(t, et.Options{APIOnly: true, JSONLogs: true, Config: func(c *config.Config) { c.APIKeys = []string{"other-key", apiKey} }})
	c := *e.Client
	c.Bearer = apiKey
	return bundle{client: &c, logs: e.Logs, e: e}
}

// verificationBody is a valid POST /v1/verifications body with the given asset fields, its
// wallet addresses of the asset's network.
func verificationBody(symbol, network, amount string) map[string]any {
	asset := map[string]any{"symbol": symbol, "amount": amount}
	if network != "" {
		asset["network"] = network
	}
	from, to := "0x3d21a92285bf17cbdde5f77531b8b58ac400288a", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	switch {
	case strings.EqualFold(symbol, "BTC"):
		from, to = "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH"
	case strings.EqualFold(network, "tron"):
		from, to = "TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9", "TWd4WrZ9wn84f5x1hZhL4DHvk738ns5jwb"
	}
	return map[string]any{
		"beneficiaryVaspId": theirVasp,
		"assetInfo":         asset,
		"payload": map[string]any{
			"version": "101",
			"ivms101": map[string]any{
				"originator":  map[string]any{"originatorPersons": []any{}, "accountNumber": []string{from}},
				"beneficiary": map[string]any{"beneficiaryPersons": []any{}, "accountNumber": []string{to}},
			},
		},
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

func decodeAs[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(b, &v), "body: %s", b)
	return v
}

type apiError struct{ Code, Message string }

func (b bundle) create(t *testing.T, body map[string]any) string {
	t.Helper()
	r := b.client.Do("POST", "/v1/verifications", mustJSON(t, body), nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	out := decodeAs[struct{ VerificationUUID, CreatedAt string }](t, r.Body)
	require.NoError(t, uuid.Validate(out.VerificationUUID))
	return out.VerificationUUID
}

func (b bundle) get(t *testing.T, id string) map[string]any {
	t.Helper()
	r := b.client.Do("GET", "/v1/verifications/"+id, nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	return decodeAs[map[string]any](t, r.Body)
}

func TestCreateAndGetVerification(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.create(t, verificationBody("eth", "ethereum", "1.50"))
	v := b.get(t, id)
	require.Equal(t, id, v["verificationUuid"])
	require.Equal(t, "ORIGINATOR", v["role"])
	require.Equal(t, ourVasp, v["originatingVaspId"])
	require.Equal(t, theirVasp, v["beneficiaryVaspId"])
	asset := v["assetInfo"].(map[string]any)
	require.Equal(t, "ETH", asset["symbol"], "symbol is canonicalised")
	require.Equal(t, "ETHEREUM", asset["network"], "network is canonicalised")
	require.Equal(t, "1.50", asset["amount"], "amount keeps its exact decimal")
	require.Equal(t, "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", v["beneficiaryAddress"])
	require.Equal(t, "0x3d21a92285bf17cbdde5f77531b8b58ac400288a", v["originatorAddress"])
	require.Nil(t, v["txHash"])
	require.Regexp(t, `^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`, v["createdAt"])
}

func TestCreateNormalisesSymbolsAsChainalysisWritesThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for in, want := range map[string][2]string{
		"CDAI": {"cDAI", "ETHEREUM"}, "btc": {"BTC", "BITCOIN"}, "Usdt": {"USDT", "TRON"},
	} {
		net := ""
		if in == "Usdt" {
			net = "Tron"
		}
		v := b.get(t, b.create(t, verificationBody(in, net, "2")))
		asset := v["assetInfo"].(map[string]any)
		require.Equal(t, want[0], asset["symbol"], in)
		require.Equal(t, want[1], asset["network"], in)
	}
}

func TestCreateMultiNetworkAssetWithoutNetworkLeavesItOpen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v := b.get(t, b.create(t, verificationBody("USDT", "", "10")))
	require.Nil(t, v["assetInfo"].(map[string]any)["network"])
}

func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	without := func(mut func(m map[string]any)) []byte {
		m := verificationBody("ETH", "", "1")
		mut(m)
		return mustJSON(t, m)
	}
	asset := func(m map[string]any) map[string]any { return m["assetInfo"].(map[string]any) }
	cases := []struct {
		name, field string
		body        []byte
	}{
		{"MissingBeneficiaryVaspId", "beneficiaryVaspId", without(func(m map[string]any) { delete(m, "beneficiaryVaspId") })},
		{"BeneficiaryIsUs", "beneficiaryVaspId", without(func(m map[string]any) { m["beneficiaryVaspId"] = ourVasp })},
		{"MissingSymbol", "assetInfo.symbol", without(func(m map[string]any) { delete(asset(m), "symbol") })},
		{"UnknownSymbol", "assetInfo.symbol", without(func(m map[string]any) { asset(m)["symbol"] = "NOPE" })},
		{"MissingAmount", "assetInfo.amount", without(func(m map[string]any) { delete(asset(m), "amount") })},
		{"NegativeAmount", "assetInfo.amount", without(func(m map[string]any) { asset(m)["amount"] = "-1" })},
		{"ZeroAmount", "assetInfo.amount", without(func(m map[string]any) { asset(m)["amount"] = "0.000" })},
		{"ExponentAmount", "assetInfo.amount", without(func(m map[string]any) { asset(m)["amount"] = "1e5" })},
		{"TextAmount", "assetInfo.amount", without(func(m map[string]any) { asset(m)["amount"] = "ten" })},
		{"BoolAmount", "assetInfo.amount", without(func(m map[string]any) { asset(m)["amount"] = true })},
		{"UnknownNetwork", "assetInfo.network", without(func(m map[string]any) { asset(m)["network"] = "Narnia" })},
		{"AssetNotOnNetwork", "assetInfo.network", without(func(m map[string]any) { asset(m)["network"] = "Bitcoin" })},
		{"MissingPayload", "payload", without(func(m map[string]any) { delete(m, "payload") })},
		{"MissingBeneficiaryAddress", "payload.ivms101.beneficiary.accountNumber: must hold at least 1 item", without(func(m map[string]any) {
			m["payload"].(map[string]any)["ivms101"].(map[string]any)["beneficiary"] = map[string]any{"accountNumber": []string{}}
		})},
		{"MalformedJSON", "JSON", []byte(`{"beneficiaryVaspId": `)},
		{"NotAnObject", "object", []byte(`[1,2]`)},
		{"EmptyBody", "empty", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := b.client.With(t).Do("POST", "/v1/verifications", tc.body, nil)
			require.Equal(t, 400, r.Status, "%s", r.Body)
			e := decodeAs[apiError](t, r.Body)
			require.Equal(t, "BAD-REQUEST", e.Code)
			require.Contains(t, e.Message, tc.field)
		})
	}
	list := b.client.Do("GET", "/v1/verifications", nil, nil)
	require.Equal(t, 0, decodeAs[struct{ Total int }](t, list.Body).Total, "a refused request stores nothing")
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, h := range map[string]http.Header{
		"Missing":   {"Authorization": nil},
		"Wrong":     {"Authorization": {"Bearer not-the-key"}},
		"NotBearer": {"Authorization": {apiKey}},
		"Prefix":    {"Authorization": {"Bearer " + apiKey[:5]}},
	} {
		c := *b.client
		c.Bearer = ""
		r := c.Do("GET", "/v1/verifications", nil, h)
		require.Equal(t, 403, r.Status, name)
		require.JSONEq(t, `{"code":"UNKNOWN-ERROR-CODE","message":"AccessDenied"}`, string(r.Body), name)
	}
	c := *b.client
	c.Bearer = "other-key"
	require.Equal(t, 200, c.Do("GET", "/v1/verifications", nil, nil).Status, "every configured key works")
	// The answer is VerifyVASP's either way; the operator's log says which it was.
	logs := b.logs.String()
	require.Contains(t, logs, `"deniedBecause":"no Authorization: Bearer <key> header"`)
	require.Contains(t, logs, `"deniedBecause":"the API key is not one of ENCLAVE_API_KEYS"`)
	require.NotContains(t, logs, "not-the-key", "a wrong key is never logged")
	require.Regexp(t, `"latency":"[0-9.]+[µm]?s"`, logs, "latency with its unit")
}

func TestFourHundredsAreLoggedWithTheirCode(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.client.Do("POST", "/v1/verifications/tx", []byte(`{"txHash":"0xabc"}`), nil)
	require.Equal(t, 400, r.Status)
	var e struct{ Code, Message string }
	require.NoError(t, json.Unmarshal(r.Body, &e))
	line := ""
	for _, l := range strings.Split(b.logs.String(), "\n") {
		if strings.Contains(l, `"status":400`) {
			line = l
		}
	}
	require.Contains(t, line, `"code":"`+e.Code+`"`)
	require.Contains(t, line, `"message":`)

	// A client that goes away while its request waits on the database is logged at info as
	// such (status 499), never as an ERROR 500: here the list waits on a lock the test holds.
	tx, err := b.e.DB.Beginx()
	require.NoError(t, err)
	_, err = tx.Exec(`LOCK TABLE verifications IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", b.client.Base+"/v1/verifications", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	require.Eventually(t, func() bool {
		var waiting bool
		return b.e.DB.Get(&waiting, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'verifications'::regclass AND NOT granted)`) == nil && waiting
	}, 10*time.Second, 20*time.Millisecond, "the request waits on the lock")
	cancel()
	require.Error(t, <-done)
	require.Eventually(t, func() bool { return strings.Contains(b.logs.String(), `"status":499`) }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, tx.Rollback())
	for _, l := range strings.Split(b.logs.String(), "\n") {
		if strings.Contains(l, `"route":"/v1/verifications"`) && strings.Contains(l, `"method":"GET"`) {
			require.Contains(t, l, `"level":"INFO"`, l)
			require.Contains(t, l, `"status":499`, l)
		}
		require.NotContains(t, l, `"level":"ERROR"`, l)
	}
	require.Contains(t, b.logs.String(), "client went away before its answer")
}

func TestGetVerificationErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.NewString()
	r := b.client.Do("GET", "/v1/verifications/"+id, nil, nil)
	require.Equal(t, 400, r.Status)
	require.Equal(t, apiError{"NOT-FOUND-VERIFICATION", "Verification(" + id + ") is not found"}, decodeAs[apiError](t, r.Body))

	r = b.client.Do("GET", "/v1/verifications/not-a-uuid", nil, nil)
	require.Equal(t, 400, r.Status)
	require.Equal(t, "BAD-REQUEST", decodeAs[apiError](t, r.Body).Code)
}

func TestListVerifications(t *testing.T) {
	t.Parallel()
	b := setup(t)
	eth := b.create(t, verificationBody("ETH", "", "1"))
	btc := b.create(t, verificationBody("BTC", "", "0.5"))
	usdt := b.create(t, verificationBody("USDT", "tron", "100"))
	b.reportTx(t, btc, "abc123"+strings.Repeat("0", 58), nil)

	type page struct {
		Total, Limit, Offset int
		TotalEstimated       bool
		Next                 *string
		Data                 []map[string]any
	}
	ids := func(p page) []string {
		var out []string
		for _, d := range p.Data {
			out = append(out, d["verificationUuid"].(string))
		}
		return out
	}
	list := func(q string) page {
		r := b.client.Do("GET", "/v1/verifications"+q, nil, nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
		return decodeAs[page](t, r.Body)
	}
	all := list("")
	require.Equal(t, 3, all.Total)
	require.Equal(t, 100, all.Limit)
	require.Equal(t, []string{usdt, btc, eth}, ids(all), "newest first")

	require.Equal(t, []string{btc}, ids(list("?symbol=btc")))
	require.Equal(t, []string{usdt}, ids(list("?network=Tron")))
	require.Equal(t, []string{btc}, ids(list("?txHash=abc123"+strings.Repeat("0", 58))))
	// txHash compares as the tx report does: hexadecimal in any case, with or without 0x.
	b.reportTx(t, eth, "0x6B0F"+strings.Repeat("A", 60), nil)
	require.Equal(t, []string{eth}, ids(list("?txHash=6b0f"+strings.Repeat("a", 60))))
	require.Equal(t, []string{eth}, ids(list("?txHash=0X6b0F"+strings.Repeat("a", 60))))
	require.Equal(t, []string{btc}, ids(list("?txHash=0xABC123"+strings.Repeat("0", 58))))
	require.Empty(t, ids(list("?txHash=6b0f"+strings.Repeat("a", 59))))
	require.Equal(t, 3, list("?role=originator").Total)
	require.Equal(t, 0, list("?role=BENEFICIARY").Total)
	require.Equal(t, 3, list("?fromDate="+time.Now().UTC().Format(time.DateOnly)).Total)
	require.Equal(t, 0, list("?toDate=2000-01-01").Total)

	p := list("?limit=2&offset=1")
	require.Equal(t, 3, p.Total)
	require.Equal(t, []string{btc, eth}, ids(p))
	require.Nil(t, p.Next, "the last page has no next")

	// Keyset pages: next leads from one page to the following, the last one has none.
	require.Nil(t, all.Next)
	first := list("?limit=2&count=exact")
	require.Equal(t, []string{usdt, btc}, ids(first))
	require.Equal(t, 3, first.Total)
	require.False(t, first.TotalEstimated)
	require.NotNil(t, first.Next)
	second := list("?limit=2&cursor=" + *first.Next)
	require.Equal(t, []string{eth}, ids(second))
	require.Equal(t, 2, second.Offset, "rows before the page, counted along the cursors")
	require.Nil(t, second.Next)
	require.Equal(t, []string{btc}, ids(list("?limit=1&symbol=BTC&cursor="+*list("?limit=1").Next)), "filters apply after the cursor")
	require.Equal(t, 3, list("?beneficiaryVaspId="+theirVasp+"&originatingVaspId="+ourVasp).Total)
	require.Equal(t, 0, list("?beneficiaryVaspId="+ourVasp).Total)

	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?offset=-1", "?role=BOSS", "?fromDate=yesterday", "?network=Narnia",
		"?offset=10001", "?cursor=abc", "?cursor=" + *first.Next + "&offset=0", "?count=estimate"} {
		r := b.client.Do("GET", "/v1/verifications"+q, nil, nil)
		require.Equal(t, 400, r.Status, q)
		e := decodeAs[apiError](t, r.Body)
		require.Equal(t, "BAD-REQUEST", e.Code, q)
		name := strings.SplitN(strings.TrimPrefix(q, "?"), "=", 2)[0]
		require.Contains(t, e.Message, name, q)
		if strings.Contains(q, "cursor=") && strings.Contains(q, "offset=") {
			require.Contains(t, e.Message, "offset", "both named: %s", e.Message)
		}
	}
}

func (b bundle) reportTx(t *testing.T, id, hash string, vout *int) {
	t.Helper()
	body := map[string]any{"verificationUuid": id, "txHash": hash}
	if vout != nil {
		body["vout"] = *vout
	}
	r := b.client.Do("POST", "/v1/verifications/tx", mustJSON(t, body), nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.JSONEq(t, `{"result":true}`, string(r.Body))
}

func TestReportTx(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.create(t, verificationBody("BTC", "", "0.1"))
	vout := 1
	b.reportTx(t, id, "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011", &vout)
	v := b.get(t, id)
	require.Equal(t, "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011", v["txHash"])
	require.EqualValues(t, 1, v["vout"])
	require.NotNil(t, v["orderedAt"])

	// The same report again is harmless and changes nothing.
	b.reportTx(t, id, "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011", &vout)
	require.Equal(t, v["orderedAt"], b.get(t, id)["orderedAt"])

	bad := func(body string) apiError {
		r := b.client.Do("POST", "/v1/verifications/tx", []byte(body), nil)
		require.Equal(t, 400, r.Status, "%s", r.Body)
		return decodeAs[apiError](t, r.Body)
	}
	// Hexadecimal hashes compare without case: the same hash in capitals is the same report.
	b.reportTx(t, id, "0F6D4E6B9BDDBE3DACB043012FFA029D706867E4749600F1D048AAE9D1A66011", &vout)
	e := bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"1f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011","vout":1}`, id))
	require.Equal(t, "BAD-REQUEST", e.Code)
	require.Contains(t, e.Message, "already")
	other := b.create(t, verificationBody("BTC", "", "0.1"))
	e = bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"hello"}`, other))
	require.Equal(t, "txHash: \"hello\" is not a transaction hash on BITCOIN", e.Message, "refused where it comes in, not screened as hello:…")

	require.Equal(t, "MISSING-VERIFICATION-UUID", bad(`{"txHash":"ffff"}`).Code)
	unknown := uuid.NewString()
	require.Equal(t, apiError{"NOT-FOUND-VERIFICATION", "Verification(" + unknown + ") is not found"},
		bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"ffff"}`, unknown)))
	e = bad(fmt.Sprintf(`{"verificationUuid":%q}`, id))
	require.Equal(t, "BAD-REQUEST", e.Code)
	require.Contains(t, e.Message, "txHash")
	e = bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"a b"}`, id))
	require.Contains(t, e.Message, "txHash")
	e = bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"ab","vout":-1}`, id))
	require.Contains(t, e.Message, "vout")
	e = bad(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"ab","vout":"one"}`, id))
	require.Contains(t, e.Message, "vout")
}

// peer signs and sends a peer request as theirVasp (or as sender with secret).
func (b bundle) peer(t *testing.T, path string, body []byte, sender, secret string, at time.Time) openapitest.Response {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	require.NoError(t, err)
	msgID := "msg_" + uuid.NewString()
	sig, err := wh.Sign(msgID, at, body)
	require.NoError(t, err)
	c := *b.client
	c.Bearer = ""
	return c.Do("POST", path, body, http.Header{
		"X-Vasp-Id": {sender}, "Webhook-Id": {msgID},
		"Webhook-Timestamp": {fmt.Sprint(at.Unix())}, "Webhook-Signature": {sig},
	})
}

func peerVerification(t *testing.T, id string) []byte {
	m := verificationBody("BTC", "bitcoin", "0.25")
	m["verificationUuid"] = id
	m["originatingVaspId"] = theirVasp
	m["beneficiaryVaspId"] = ourVasp
	return mustJSON(t, m)
}

func TestPeerVerificationAndTxReport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := uuid.NewString()
	body := peerVerification(t, id)
	now := time.Now()

	r := b.peer(t, "/peer/v1/verifications", body, theirVasp, peerSecret, now)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.JSONEq(t, `{"result":true}`, string(r.Body))
	v := b.get(t, id)
	require.Equal(t, "BENEFICIARY", v["role"])
	require.Equal(t, theirVasp, v["originatingVaspId"])
	require.Equal(t, "BITCOIN", v["assetInfo"].(map[string]any)["network"])

	// A replay of the same signed body is harmless; the same uuid with other content is not.
	require.Equal(t, 200, b.peer(t, "/peer/v1/verifications", body, theirVasp, peerSecret, now).Status)
	other := peerVerification(t, id)
	other = []byte(strings.Replace(string(other), `"0.25"`, `"0.26"`, 1))
	r = b.peer(t, "/peer/v1/verifications", other, theirVasp, peerSecret, now)
	require.Equal(t, 400, r.Status)
	require.Contains(t, decodeAs[apiError](t, r.Body).Message, "verificationUuid")

	// Our own tx report route refuses a BENEFICIARY verification: only the originator reports.
	rr := b.client.Do("POST", "/v1/verifications/tx", []byte(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"aa"}`, id)), nil)
	require.Equal(t, 400, rr.Status)
	require.Equal(t, "BAD-REQUEST", decodeAs[apiError](t, rr.Body).Code)

	hash := "9022c2d5" + strings.Repeat("0", 56)
	tx := []byte(fmt.Sprintf(`{"verificationUuid":%q,"txHash":%q,"vout":4}`, id, hash))
	r = b.peer(t, "/peer/v1/verifications/tx", tx, theirVasp, peerSecret, now)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Equal(t, 200, b.peer(t, "/peer/v1/verifications/tx", tx, theirVasp, peerSecret, now).Status, "replay")
	v = b.get(t, id)
	require.Equal(t, hash, v["txHash"])
	require.EqualValues(t, 4, v["vout"])
}

func TestPeerRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	denied := `{"code":"UNKNOWN-ERROR-CODE","message":"AccessDenied"}`
	body := peerVerification(t, uuid.NewString())
	wrongSecret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another-secret-of-32-bytes-00000"))
	for name, r := range map[string]openapitest.Response{
		"WrongSecret":   b.peer(t, "/peer/v1/verifications", body, theirVasp, wrongSecret, time.Now()),
		"Stale":         b.peer(t, "/peer/v1/verifications", body, theirVasp, peerSecret, time.Now().Add(-6*time.Minute)),
		"FromTheFuture": b.peer(t, "/peer/v1/verifications", body, theirVasp, peerSecret, time.Now().Add(6*time.Minute)),
		"UnknownSender": b.peer(t, "/peer/v1/verifications", body, "99999", peerSecret, time.Now()),
	} {
		require.Equal(t, 403, r.Status, name)
		require.JSONEq(t, denied, string(r.Body), name)
	}
	// Tampered body: signed one thing, sent another.
	wh, _ := standardwebhooks.NewWebhook(peerSecret)
	now := time.Now()
	sig, _ := wh.Sign("m1", now, body)
	c := *b.client
	c.Bearer = ""
	r := c.Do("POST", "/peer/v1/verifications", append(body[:len(body)-1:len(body)-1], []byte(`,"x":1}`)...), http.Header{
		"X-Vasp-Id": {theirVasp}, "Webhook-Id": {"m1"}, "Webhook-Timestamp": {fmt.Sprint(now.Unix())}, "Webhook-Signature": {sig},
	})
	require.Equal(t, 403, r.Status)
	// Unsigned.
	r = c.Do("POST", "/peer/v1/verifications", body, http.Header{"X-Vasp-Id": {theirVasp}})
	require.Equal(t, 403, r.Status)

	// Signed correctly but not addressed to us, or claiming another originator.
	m := verificationBody("BTC", "", "1")
	m["verificationUuid"], m["originatingVaspId"], m["beneficiaryVaspId"] = uuid.NewString(), theirVasp, "12345"
	r = b.peer(t, "/peer/v1/verifications", mustJSON(t, m), theirVasp, peerSecret, time.Now())
	require.Equal(t, 400, r.Status)
	require.Contains(t, decodeAs[apiError](t, r.Body).Message, "beneficiaryVaspId")
	m["beneficiaryVaspId"], m["originatingVaspId"] = ourVasp, "777"
	r = b.peer(t, "/peer/v1/verifications", mustJSON(t, m), theirVasp, peerSecret, time.Now())
	require.Equal(t, 400, r.Status)
	require.Contains(t, decodeAs[apiError](t, r.Body).Message, "originatingVaspId")

	// Signed bodies have one reading: a key twice, or in another case, is refused naming it.
	for name, c := range map[string]struct{ path, body, field string }{
		"DuplicateKey": {"/peer/v1/verifications/tx", `{"verificationUuid":"` + m["verificationUuid"].(string) + `","txHash":"ab","txHash":"cd"}`, "txHash: the key appears twice"},
		"CaseOfAField": {"/peer/v1/verifications/error", `{"VERIFICATIONUUID":"` + m["verificationUuid"].(string) + `","result":"ERROR","reason":"UNDEFINED-ERROR"}`,
			"VERIFICATIONUUID: keys are matched exactly"},
		"CaseInThePayload": {"/peer/v1/verifications", strings.Replace(string(mustJSON(t, m)), `"accountNumber"`, `"accountNumber":["x"],"ACCOUNTNUMBER"`, 1),
			"payload.ivms101.beneficiary.accountNumber and payload.ivms101.beneficiary.ACCOUNTNUMBER: keys that differ only in case"},
	} {
		r = b.peer(t, c.path, []byte(c.body), theirVasp, peerSecret, time.Now())
		require.Equal(t, 400, r.Status, "%s: %s", name, r.Body)
		require.Contains(t, decodeAs[apiError](t, r.Body).Message, c.field, name)
	}

	// A peer cannot report a tx on a verification it did not start.
	ours := b.create(t, verificationBody("ETH", "", "1"))
	r = b.peer(t, "/peer/v1/verifications/tx", []byte(fmt.Sprintf(`{"verificationUuid":%q,"txHash":"ab"}`, ours)), theirVasp, peerSecret, time.Now())
	require.Equal(t, 400, r.Status)
	require.Equal(t, "NOT-FOUND-VERIFICATION", decodeAs[apiError](t, r.Body).Code)
	require.Nil(t, b.get(t, ours)["txHash"])
}

func TestEnvelopeForUnknownRoutesMethodsAndLargeBodies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.client.Unchecked = true // a route that does not exist cannot be in the document
	r := b.client.Do("GET", "/v1/nope", nil, nil)
	require.Equal(t, 404, r.Status)
	require.Equal(t, "NOT-FOUND", decodeAs[apiError](t, r.Body).Code)

	r = b.client.Do("DELETE", "/v1/verifications", nil, nil)
	require.Equal(t, 405, r.Status)
	require.Equal(t, "METHOD-NOT-ALLOWED", decodeAs[apiError](t, r.Body).Code)

	b.client.Unchecked = false

	// Every GET of /v1 takes the query parameters openapi.yaml documents for it, and refuses
	// any other naming it (a misspelt filter would otherwise list every row).
	id := uuid.NewString()
	for op, params := range openapitest.QueryParameters(t) {
		method, path, _ := strings.Cut(op, " ")
		if method != "GET" || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		path = strings.NewReplacer("{verificationUuid}", id, "{requestId}", id, "{vaspId}", theirVasp).Replace(path)
		if len(params) > 0 {
			q := url.Values{}
			for _, p := range params {
				q.Set(p, "") // an empty value is no filter
			}
			r := b.client.Do("GET", path+"?"+q.Encode(), nil, nil)
			require.Equal(t, 200, r.Status, "%s takes %v: %s", op, params, r.Body)
		}
		r := b.client.Do("GET", path+"?txhash=0xab&Limit=1", nil, nil)
		require.Equal(t, 400, r.Status, "%s: %s", op, r.Body)
		e := decodeAs[apiError](t, r.Body)
		require.Equal(t, "BAD-REQUEST", e.Code)
		require.Contains(t, e.Message, "Limit: not a query parameter of this route", op)
		require.Contains(t, e.Message, "txhash: not a query parameter of this route", op)
	}
	r = b.client.Do("GET", "/v1/verifications?txhash=0xab", nil, nil)
	require.Contains(t, decodeAs[apiError](t, r.Body).Message, "txhash: not a query parameter of this route (did you mean txHash?)")

	big := []byte(`{"beneficiaryVaspId":"` + strings.Repeat("x", api.MaxBodyBytes) + `"}`)
	r = b.client.Do("POST", "/v1/verifications", big, nil)
	require.Equal(t, 413, r.Status)
	require.Equal(t, "PAYLOAD-TOO-LARGE", decodeAs[apiError](t, r.Body).Code)
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.client.Do("GET", "/healthz", nil, http.Header{"X-Request-Id": {"abc-123"}})
	require.Equal(t, "abc-123", r.Header.Get("X-Request-Id"))
	r = b.client.Do("GET", "/healthz", nil, nil)
	require.NoError(t, uuid.Validate(r.Header.Get("X-Request-Id")))
}

func TestOperationsRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.JSONEq(t, `{"status":"ok"}`, string(b.client.Do("GET", "/healthz", nil, nil).Body))
	require.JSONEq(t, `{"status":"ready"}`, string(b.client.Do("GET", "/readyz", nil, nil).Body))
	r := b.client.Do("GET", "/openapi.yaml", nil, nil)
	require.Equal(t, 200, r.Status)
	require.Contains(t, string(r.Body), "openapi: 3.1.0")
	r = b.client.Do("GET", "/metrics", nil, nil)
	require.Equal(t, 200, r.Status)
}

func TestEveryRouteIsInOpenAPI(t *testing.T) {
	t.Parallel()
	h := api.NewHandler(api.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry()})
	documented := openapitest.Operations(t)
	for _, r := range h.Routes() {
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "{"+seg[1:]+"}", 1)
			}
		}
		require.True(t, documented[r.Method+" "+path], "route %s %s is missing from openapi.yaml", r.Method, path)
		delete(documented, r.Method+" "+path)
	}
	require.Empty(t, documented, "openapi.yaml documents routes the router does not have")
}

// TestListsAreBounded: a list leaves the IVMS101 payloads out unless asked, and then pages are
// small; a payload has a size bound well above what a travel-rule message needs.
func TestListsAreBounded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := verificationBody("ETH", "", "1")
	big["payload"].(map[string]any)["ivms101"].(map[string]any)["note"] = strings.Repeat("x", 64<<10)
	r := b.client.Do("POST", "/v1/verifications", mustJSON(t, big), nil)
	require.Equal(t, 200, r.Status, "64 kB of payload is accepted: %s", r.Body)

	list := b.client.Do("GET", "/v1/verifications", nil, nil)
	require.Equal(t, 200, list.Status)
	require.NotContains(t, string(list.Body), `"payload"`, "no payload unless asked")
	require.Less(t, len(list.Body), 4<<10)

	with := b.client.Do("GET", "/v1/verifications?include=payload", nil, nil)
	require.Equal(t, 200, with.Status)
	require.Contains(t, string(with.Body), strings.Repeat("x", 64<<10))
	require.Contains(t, string(with.Body), `"limit":20`, "a smaller default page with payloads")
	r = b.client.Do("GET", "/v1/verifications?include=payload&limit=21", nil, nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "limit")
	r = b.client.Do("GET", "/v1/verifications?include=everything", nil, nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "include")

	big["payload"].(map[string]any)["ivms101"].(map[string]any)["note"] = strings.Repeat("x", 129<<10)
	r = b.client.Do("POST", "/v1/verifications", mustJSON(t, big), nil)
	require.Equal(t, 400, r.Status)
	require.Contains(t, string(r.Body), "payload: must be at most 131072 bytes")

	// Bounded by bytes too: payloads of '<' answer six times their size in JSON escapes, so a
	// page stops before api.MaxPageBytes and says so; next continues with the rest.
	big["payload"].(map[string]any)["ivms101"].(map[string]any)["note"] = strings.Repeat("<", 120<<10)
	var raw bytes.Buffer
	enc := json.NewEncoder(&raw)
	enc.SetEscapeHTML(false) // sent as '<' itself, as a client may
	require.NoError(t, enc.Encode(big))
	for range 6 {
		r := b.client.Do("POST", "/v1/verifications", raw.Bytes(), nil)
		require.Equal(t, 200, r.Status, "%s", r.Body)
	}
	type page struct {
		Next      *string
		Truncated bool
		Data      []map[string]any
	}
	seen := map[string]bool{}
	next := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		r := b.client.Do("GET", "/v1/verifications?include=payload"+next, nil, nil)
		require.Equal(t, 200, r.Status)
		require.LessOrEqual(t, len(r.Body), api.MaxPageBytes+1024, "page %d", pages)
		p := decodeAs[page](t, r.Body)
		require.NotEmpty(t, p.Data)
		if pages == 0 {
			require.True(t, p.Truncated, "7 rows of ~720 KiB of escapes do not fit 4 MiB")
			require.NotNil(t, p.Next)
		}
		for _, v := range p.Data {
			require.NotNil(t, v["payload"])
			seen[v["verificationUuid"].(string)] = true
		}
		if p.Next == nil {
			require.False(t, p.Truncated)
			break
		}
		next = "&cursor=" + *p.Next
	}
	require.Len(t, seen, 7, "every row once, across the cut pages")

	// One bad row never fails a page: a payload sealed by a key the keyset lacks (here, another
	// keyset's) is null with payloadError, logged with its uuid only; the other rows are intact.
	other, err := seal.New()
	require.NoError(t, err)
	foreign, err := seal.Load(other)
	require.NoError(t, err)
	odd := b.create(t, verificationBody("ETH", "", "2"))
	sealed, err := foreign.Seal([]byte(`{"ivms101":{"secret":"Jane Doe"}}`), []byte(odd))
	require.NoError(t, err)
	_, err = b.e.DB.Exec(`UPDATE verifications SET payload_sealed = $2, payload_key_id = $3 WHERE uuid = $1`, odd, sealed, int64(seal.KeyID(sealed)))
	require.NoError(t, err)
	r = b.client.Do("GET", "/v1/verifications?include=payload&limit=3", nil, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	rows := decodeAs[page](t, r.Body).Data
	require.Len(t, rows, 3)
	require.Equal(t, odd, rows[0]["verificationUuid"])
	require.Contains(t, rows[0], "payload")
	require.Nil(t, rows[0]["payload"])
	require.Contains(t, rows[0]["payloadError"], "does not open with ENCLAVE_DATA_KEYSET")
	require.Equal(t, "ETH", rows[0]["assetInfo"].(map[string]any)["symbol"], "the row's plain columns are there")
	for _, v := range rows[1:] {
		require.NotNil(t, v["payload"])
		require.NotContains(t, v, "payloadError")
	}
	require.Contains(t, b.logs.String(), odd, "the row is logged by its uuid")
	require.NotContains(t, b.logs.String(), "Jane Doe")
	require.NotContains(t, string(b.client.Do("GET", "/v1/verifications?limit=3", nil, nil).Body), "payloadError",
		"a list without payloads has nothing to open")
}

func sealer(t *testing.T) *seal.Sealer {
	s, err := seal.Load(et.Keyset(t))
	require.NoError(t, err)
	return s
}
