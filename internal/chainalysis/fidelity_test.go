package chainalysis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/chainalysis"
	"github.com/travelrule/enclave/internal/kytsim"
)

// fixture reads a JSON example copied verbatim from the KYT v2 integration guide.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func generic(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v), "%s", b)
	return normalise(v)
}

// normalise makes numbers comparable by value (1.0 == 1, "1.75" stays a string).
func normalise(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalise(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalise(e)
		}
	case json.Number:
		r, _ := new(big.Rat).SetString(string(x))
		return "number:" + r.RatString()
	}
	return v
}

// TestReferenceExamplesDecodeWithoutLoss decodes every v2 answer example into the client's
// types and encodes it back: nothing may be lost or changed, nulls stay nulls.
func TestReferenceExamplesDecodeWithoutLoss(t *testing.T) {
	t.Parallel()
	cases := map[string]func() any{
		"register_transfer_response.json":  func() any { return new(chainalysis.Transfer) },
		"register_pregrowth_response.json": func() any { return new(chainalysis.Transfer) },
		"transfer_summary.json":            func() any { return new(chainalysis.Transfer) },
		"register_attempt_response.json":   func() any { return new(chainalysis.WithdrawalAttempt) },
		"attempt_summary.json":             func() any { return new(chainalysis.WithdrawalAttempt) },
		"transfer_alerts.json":             func() any { return new(chainalysis.Alerts) },
		"attempt_alerts.json":              func() any { return new(chainalysis.Alerts) },
		"register_transfer_request.json":   func() any { return new(chainalysis.RegisterTransferRequest) },
		"register_attempt_request.json":    func() any { return new(chainalysis.RegisterAttemptRequest) },
		"v1_alerts.json":                   func() any { return new(chainalysis.AlertPage) },
		"v1_alerts_reference.json":         func() any { return new(chainalysis.AlertPage) },
		"v1_users.json":                    func() any { return new(chainalysis.UserPage) },
		"v1_user.json":                     func() any { return new(chainalysis.User) },
	}
	for name, newT := range cases {
		t.Run(name, func(t *testing.T) {
			raw := fixture(t, name)
			v := newT()
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields() // every field of the example has a home in the type
			require.NoError(t, d.Decode(v))
			back, err := json.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, generic(t, raw), generic(t, back))
		})
	}
	// The pre-growth request sends amounts as strings; the client sends JSON numbers. The
	// values survive exactly.
	var pre chainalysis.RegisterTransferRequest
	require.NoError(t, json.Unmarshal(fixture(t, "register_pregrowth_request.json"), &pre))
	require.Equal(t, "1.75", pre.AssetAmount.String())
	require.Equal(t, "69.09", pre.AssetPrice.String())
	require.Equal(t, []string{"xch1vjgqx900fwejxgn8667h6pykn544fkxwwqtszv0dmd7ngar52eyq8gr9zd"}, pre.InputAddresses)
}

// shape is a JSON value's field names and types, recursively; values are not compared.
func shape(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = shape(e)
		}
		return out
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{shape(x[0])}
	case nil:
		return "null"
	case string:
		if len(x) > 7 && x[:7] == "number:" {
			return "number"
		}
		return "string"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}

// sameShape fails unless got has exactly the fields of want with the same JSON types. A null
// on either side matches anything: the examples show values (a reviewer's name, a network)
// that are legitimately null or present.
func sameShape(t *testing.T, want, got any, path string) {
	t.Helper()
	if want == "null" || got == "null" {
		return
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, "%s: want an object, got %v", path, got)
		require.Equal(t, keys(w), keys(g), "%s: field names differ", path)
		for k := range w {
			sameShape(t, w[k], g[k], path+"."+k)
		}
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, "%s: want an array, got %v", path, got)
		if len(w) > 0 && len(g) > 0 {
			sameShape(t, w[0], g[0], path+"[0]")
		}
	default:
		require.Equal(t, want, got, "%s: JSON type differs", path)
	}
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSandboxAnswersLikeTheReference sends kytsim the guide's own requests and compares its
// answers with the guide's answers field for field and type for type.
func TestSandboxAnswersLikeTheReference(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: "k"})
	defer sim.Close()
	call := func(method, path string, body []byte) any {
		req, err := http.NewRequest(method, sim.URL+"/api/kyt"+path, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Token", "k")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		require.Equal(t, 200, resp.StatusCode, "%s %s: %s", method, path, buf.String())
		return generic(t, buf.Bytes())
	}
	check := func(example string, got any) {
		t.Helper()
		sameShape(t, shape(generic(t, fixture(t, example))), shape(got), example)
	}

	reg := call("POST", "/v2/users/user_example/transfers", fixture(t, "register_transfer_request.json"))
	check("register_transfer_response.json", reg)
	id := reg.(map[string]any)["externalId"].(string)
	sum := call("GET", "/v2/transfers/"+id, nil)
	check("transfer_summary.json", sum)
	alerts := call("GET", "/v2/transfers/"+id+"/alerts", nil)
	check("transfer_alerts.json", alerts)
	a := alerts.(map[string]any)["alerts"].([]any)[0].(map[string]any)
	// The guide's received transfer came from an OFAC-designated sender.
	require.Equal(t, "SEVERE", a["alertLevel"])
	require.Equal(t, "sanctioned entity", a["category"])
	require.Equal(t, "OFAC SDN Fujing Zheng 2019-08-21", a["service"])
	require.Equal(t, "number:3", a["categoryId"])
	require.Equal(t, "0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011", sum.(map[string]any)["tx"])
	require.Equal(t, "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7", sum.(map[string]any)["outputAddress"])

	check("register_pregrowth_response.json", call("POST", "/v2/users/user_example/transfers", fixture(t, "register_pregrowth_request.json")))

	att := call("POST", "/v2/users/withdrawal_attempt_test/withdrawal-attempts", fixture(t, "register_attempt_request.json"))
	check("register_attempt_response.json", att)
	require.Equal(t, generic(t, []byte(`29877.50`)), att.(map[string]any)["usdAmount"], "the guide's price, exactly")
	aid := att.(map[string]any)["externalId"].(string)
	check("attempt_summary.json", call("GET", "/v2/withdrawal-attempts/"+aid, nil))
	aal := call("GET", "/v2/withdrawal-attempts/"+aid+"/alerts", nil)
	check("attempt_alerts.json", aal)
	want := generic(t, fixture(t, "attempt_alerts.json")).(map[string]any)["alerts"].([]any)[0].(map[string]any)
	got := aal.(map[string]any)["alerts"].([]any)[0].(map[string]any)
	for _, k := range []string{"alertLevel", "category", "service", "alertAmount", "exposureType", "categoryId"} {
		require.Equal(t, want[k], got[k], k)
	}

	v1 := call("GET", "/v1/alerts?userId=user_example", nil)
	check("v1_alerts.json", v1)
	require.Equal(t, ">$0 received directly from sanctioned entity", v1.(map[string]any)["data"].([]any)[0].(map[string]any)["rule"])
	check("v1_assets.json", call("GET", "/v1/assets", nil))
	check("v1_users.json", call("GET", "/v1/users", nil))
	check("v1_user.json", call("GET", "/v1/users/user_example", nil))
}

// TestEntitiesExamplesDecodeWithoutLoss decodes every JSON example of the Address Screening
// and Entities API references (testdata/entities, copied from them; the "{ ... }" elisions of
// the documents left out) into the client's types and back: nothing lost, nulls kept, and
// every number carried digit for digit.
func TestEntitiesExamplesDecodeWithoutLoss(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "entities", "*.json"))
	require.NoError(t, err)
	require.Len(t, files, 17, "every example of both documents")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			require.NoError(t, err)
			var v any
			switch {
			case bytes.Contains([]byte(f), []byte("-entity")):
				v = new(chainalysis.Entity)
			case bytes.Contains([]byte(f), []byte("-registered")):
				v = new(chainalysis.RegisteredEntity)
			default:
				v = new(struct {
					Message string `json:"message"`
				})
			}
			d := json.NewDecoder(bytes.NewReader(raw))
			d.DisallowUnknownFields()
			require.NoError(t, d.Decode(v))
			back, err := json.Marshal(v)
			require.NoError(t, err)
			require.Equal(t, generic(t, raw), generic(t, back))
			for _, n := range []string{"51.537210", "0.0", "0.000033", "49.463885"} {
				if bytes.Contains(raw, []byte(" "+n)) {
					require.Contains(t, string(back), ":"+n, "the number as Chainalysis wrote it")
				}
			}
		})
	}
}

// TestSandboxEntitiesAreTheClientsTypes: every address kytsim rates answers JSON that decodes
// into the client's Entity with no field unknown and none lost, and the client reads it: "Entity
// not found" before registration, the assessment after.
func TestSandboxEntitiesAreTheClientsTypes(t *testing.T) {
	t.Parallel()
	sim := kytsim.NewServer(kytsim.Options{APIKey: key, RiskyFraction: 0.5})
	defer sim.Close()
	c := newClient(t, sim.URL+"/api/risk", nil)
	ctx := context.Background()
	req, err := http.NewRequest("GET", sim.URL+"/_sim/addresses", nil)
	require.NoError(t, err)
	req.Header.Set("Token", key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var listed struct {
		Addresses []struct{ Address string }
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&listed))
	resp.Body.Close()
	addrs := []string{"0x1111111111111111111111111111111111111111", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT"}
	for _, a := range listed.Addresses {
		addrs = append(addrs, a.Address)
	}
	require.Greater(t, len(addrs), 20)
	for _, addr := range addrs {
		_, err := c.Entity(ctx, addr)
		require.True(t, chainalysis.IsEntityNotFound(err), "%s: %v", addr, err)
		reg, err := c.RegisterEntity(ctx, addr)
		require.NoError(t, err)
		require.Equal(t, addr, reg.Address)
		e, err := c.Entity(ctx, addr)
		require.NoError(t, err)
		require.True(t, e.Complete())
		require.NotNil(t, e.Risk)

		r, err := http.NewRequest("GET", sim.URL+"/v2/entities/"+addr, nil)
		require.NoError(t, err)
		r.Header.Set("Token", key)
		resp, err := http.DefaultClient.Do(r)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		var v chainalysis.Entity
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		require.NoError(t, d.Decode(&v), "%s", raw)
		back, err := json.Marshal(v)
		require.NoError(t, err)
		require.Equal(t, generic(t, raw), generic(t, back), "%s", addr)
	}
}
