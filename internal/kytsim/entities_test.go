package kytsim_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/kytsim"
)

// TestEntitiesAnswerTheDocumentsExamples: an address is "Entity not found" until registered,
// under /api/risk as at the root; each address the documents show is then answered with the
// documents' JSON, field for field.
func TestEntitiesAnswerTheDocumentsExamples(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer sim.Close()
	files, err := filepath.Glob("entities/*.json")
	require.NoError(t, err)
	require.Len(t, files, 6)
	for _, f := range files {
		addr := filepath.Base(f[:len(f)-len(".json")])
		a := call(t, sim.URL, "k", "GET", "/api/risk/v2/entities/"+addr, "")
		require.Equal(t, 404, a.Status)
		require.Equal(t, map[string]any{"message": "Entity not found. Please be sure to register the Entity."}, a.JSON)

		a = call(t, sim.URL, "k", "POST", "/api/risk/v2/entities", `{"address":"`+addr+`"}`)
		require.Equal(t, 200, a.Status)
		require.Equal(t, map[string]any{"address": addr}, a.JSON)

		a = call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "")
		require.Equal(t, 200, a.Status)
		want, err := os.ReadFile(f)
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(a.Body))
	}
}

// TestEntitiesRateTheDatasetAsKYTDoes: an address known only to the dataset (a darknet market
// in KYT's alerts) is rated High with its cluster, exposure and trigger; an unknown address is
// Low and clean; a re-rated address follows its new rating. The answer has every field the
// documents name, with their types.
func TestEntitiesRateTheDatasetAsKYTDoes(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer sim.Close()
	get := func(addr string) map[string]any {
		require.Equal(t, 200, call(t, sim.URL, "k", "POST", "/v2/entities", `{"address":"`+addr+`"}`).Status)
		a := call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "")
		require.Equal(t, 200, a.Status, "%s", a.Body)
		return a.JSON
	}
	dn := get("1DP38CC2kf6ewUDaaVd9nBfuAD8SP15g2T")
	require.Equal(t, "High", dn["risk"])
	require.Equal(t, "Identified as Darknet Market", dn["riskReason"])
	require.Equal(t, map[string]any{"name": "Silk Road Marketplace", "category": "darknet market"}, dn["cluster"])
	require.Equal(t, "COMPLETE", dn["status"])
	exp := dn["exposures"].([]any)[0].(map[string]any)
	require.Equal(t, "darknet market", exp["category"])
	require.IsType(t, json.Number(""), exp["value"])
	require.Equal(t, "direct", exp["exposureType"])
	require.Equal(t, "both_directions", exp["direction"])
	rule := dn["triggers"].([]any)[0].(map[string]any)["ruleTriggered"].(map[string]any)
	require.Equal(t, "High", rule["risk"])

	clean := get("0x1111111111111111111111111111111111111111")
	require.Equal(t, "Low", clean["risk"])
	require.Nil(t, clean["riskReason"])
	require.Nil(t, clean["cluster"])
	require.Equal(t, []any{}, clean["addressIdentifications"])
	require.Equal(t, []any{}, clean["triggers"])
}

// TestEntitiesFaults: a lost registration answers "Entity not found" the stated number of
// times; legacy PENDING / IN_PROGRESS answers come first when asked for; errors carry the
// Entities API's {"message"} body.
func TestEntitiesFaults(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: "k", EntityPendingReads: 2})
	defer sim.Close()
	addr := "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
	require.Equal(t, 200, call(t, sim.URL, "k", "POST", "/v2/entities", `{"address":"`+addr+`"}`).Status)
	require.Equal(t, "PENDING", call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "").JSON["status"])
	require.Equal(t, "IN_PROGRESS", call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "").JSON["status"])
	require.Equal(t, "Severe", call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "").JSON["risk"])

	sim.SetFaults(kytsim.Faults{EntityNotFound: 1})
	require.Equal(t, 404, call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "").Status)
	require.Equal(t, 200, call(t, sim.URL, "k", "GET", "/v2/entities/"+addr, "").Status)

	a := call(t, sim.URL, "wrong", "GET", "/v2/entities/"+addr, "")
	require.Equal(t, 403, a.Status)
	require.Len(t, a.JSON, 1)
	require.NotEmpty(t, a.JSON["message"])
	a = call(t, sim.URL, "k", "POST", "/v2/entities", `{}`)
	require.Equal(t, 400, a.Status)
	require.Equal(t, "address is required", a.JSON["message"])
}
