package kytsim_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/kytsim"
)

// TestReRatingRaisesAlertsLater: a sent transfer processed clean gets a new alert, created
// now, when its output address is re-rated as sanctioned; the v2 alert's externalId is the v1
// alertIdentifier; dismissing it is seen in /v1/alerts and lowers the user's riskScore.
func TestReRatingRaisesAlertsLater(t *testing.T) {
	t.Parallel()
	clk := kytsim.NewManualClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	sim := kytsim.NewServer(kytsim.Options{APIKey: "k", Now: clk.Now})
	defer sim.Close()
	const addr = "0x1111111111111111111111111111111111111111"
	a := call(t, sim.URL, "k", "POST", "/v2/users/u1/transfers",
		`{"network":"Ethereum","asset":"ETH","transferReference":"0xabc:`+addr+`","direction":"sent","assetAmount":2}`)
	require.Equal(t, 200, a.Status, "%s", a.Body)
	ext := a.JSON["externalId"].(string)
	alerts := call(t, sim.URL, "k", "GET", "/v2/transfers/"+ext+"/alerts", "")
	require.Empty(t, alerts.JSON["alerts"], "clean when processed")
	require.Equal(t, "LOW", call(t, sim.URL, "k", "GET", "/v1/users/u1", "").JSON["riskScore"])

	clk.Add(time.Hour)
	r := call(t, sim.URL, "k", "PUT", "/_sim/addresses/"+addr, `{"category":"sanctioned entity","cluster":"OFAC SDN Example"}`)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	require.Len(t, r.JSON["alertsRaised"], 1)

	v2 := call(t, sim.URL, "k", "GET", "/v2/transfers/"+ext+"/alerts", "").JSON["alerts"].([]any)
	require.Len(t, v2, 1)
	id := v2[0].(map[string]any)["externalId"].(string)
	v1 := call(t, sim.URL, "k", "GET", "/v1/alerts?userId=u1&createdAt_gte=2026-01-02T04:00:00Z&sort=createdAt%20asc", "")
	require.Equal(t, 200, v1.Status, "%s", v1.Body)
	data := v1.JSON["data"].([]any)
	require.Len(t, data, 1)
	got := data[0].(map[string]any)
	require.Equal(t, id, got["alertIdentifier"])
	require.Equal(t, "SEVERE", got["level"])
	require.Equal(t, "Unreviewed", got["alertStatus"])
	require.Equal(t, "2026-01-02T04:04:05.000000Z", got["createdAt"])
	require.Equal(t, "0xabc:"+addr, got["transferReference"])
	require.Equal(t, "SEVERE", call(t, sim.URL, "k", "GET", "/v1/users/u1", "").JSON["riskScore"])

	clk.Add(time.Minute)
	require.Equal(t, 200, call(t, sim.URL, "k", "PUT", "/_sim/alerts/"+id, `{"alertStatus":"Dismissed","alertStatusCreatedBy":"analyst"}`).Status)
	got = call(t, sim.URL, "k", "GET", "/v1/alerts?userId=u1", "").JSON["data"].([]any)[0].(map[string]any)
	require.Equal(t, "Dismissed", got["alertStatus"])
	require.Equal(t, "analyst", got["alertStatusCreatedBy"])
	require.Equal(t, "2026-01-02T04:05:05.000000Z", got["alertStatusCreatedAt"])
	u := call(t, sim.URL, "k", "GET", "/v1/users/u1", "").JSON
	require.Equal(t, "LOW", u["riskScore"], "a dismissed alert no longer counts")
	require.Equal(t, "green", u["score"])
	exp := u["exposureDetails"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"name": "OFAC SDN Example", "category": "sanctioned entity"}, exp["cluster"])
	require.NotZero(t, exp["sentDirectExposure"])

	list := call(t, sim.URL, "k", "GET", "/v1/users", "")
	require.EqualValues(t, "1", list.JSON["total"].(interface{ String() string }).String())
	require.Equal(t, 404, call(t, sim.URL, "k", "GET", "/v1/users/nobody", "").Status)
	require.Equal(t, 400, call(t, sim.URL, "k", "PUT", "/_sim/addresses/"+addr, `{"category":"pirates"}`).Status)
	require.Equal(t, 400, call(t, sim.URL, "k", "GET", "/v1/alerts?sort=colour", "").Status)
}
