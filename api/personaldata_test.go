package api_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/verification"
)

// personal are the distinctive details of the payloads below: none may appear in the database.
var personal = []string{"Zebulon", "Quartermaine", "NID-7788-XYZ", "42 Wallaby Way", "Philippa", "Featherstonehaugh"}

func personalBody(first, last, id, street string) map[string]any {
	b := et.VerificationBody("ETH", "", "1", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1")
	ivms := b["payload"].(map[string]any)["ivms101"].(map[string]any)
	ivms["originator"].(map[string]any)["originatorPersons"] = []any{map[string]any{"naturalPerson": map[string]any{
		"name":                   map[string]any{"nameIdentifier": []any{map[string]any{"primaryIdentifier": last, "secondaryIdentifier": first}}},
		"nationalIdentification": map[string]any{"nationalIdentifier": id},
		"geographicAddress":      []any{map[string]any{"streetName": street}},
	}}}
	return b
}

// rawDatabase is everything the tables of verifications and what hangs off them hold, as text.
func rawDatabase(t *testing.T, e *et.Enclave) string {
	var dump string
	require.NoError(t, e.DB.Get(&dump, `SELECT coalesce(string_agg(v::text, E'\n'), '') FROM verifications v`))
	var cb string
	require.NoError(t, e.DB.Get(&cb, `SELECT coalesce(string_agg(c::text, E'\n'), '') FROM callbacks c`))
	return dump + cb
}

// TestPersonalDataIsSealedAtRest (issue 12): what the API stores, psql cannot read; the API
// answers it unchanged; a wrong keyset, a tampered ciphertext or one copied onto another row is
// an INTERNAL-ERROR for that request only; rotation then rekey leaves every row under the new
// key; rows written before payloads were sealed read as before and are sealed by rekey.
func TestPersonalDataIsSealedAtRest(t *testing.T) {
	t.Parallel()
	e := et.Start(t, et.Options{})
	mine := e.Client.Do("POST", "/v1/verifications", mustJSON(t, personalBody("Zebulon", "Quartermaine", "NID-7788-XYZ", "42 Wallaby Way")), nil)
	require.Equal(t, 200, mine.Status, "%s", mine.Body)
	var created struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(mine.Body, &created))
	inbound := uuid.NewString()
	peer := personalBody("Philippa", "Featherstonehaugh", "NID-1", "1 Peer Street")
	peer["verificationUuid"], peer["originatingVaspId"], peer["beneficiaryVaspId"] = inbound, et.TheirVasp, et.OurVasp
	require.Equal(t, 200, e.Peer("/peer/v1/verifications", mustJSON(t, peer)).Status)
	require.Equal(t, 200, e.Peer("/peer/v1/verifications", mustJSON(t, peer)).Status, "a replay is still recognised")
	// Our answer to it carries the beneficiary data we return: sealed too, and rekeyed.
	answer := e.Client.Do("POST", "/v1/verifications/"+inbound+"/result", mustJSON(t, map[string]any{"result": "VERIFIED",
		"ivms101": map[string]any{"beneficiary": map[string]any{"beneficiaryPersons": []any{map[string]any{"naturalPerson": map[string]any{
			"name": []any{map[string]any{"nameIdentifier": []any{map[string]any{"primaryIdentifier": "Resultina Quimby"}}}}}}},
			"accountNumber": peer["payload"].(map[string]any)["ivms101"].(map[string]any)["beneficiary"].(map[string]any)["accountNumber"]}}}), nil)
	require.Equal(t, 200, answer.Status, "%s", answer.Body)
	require.NotContains(t, rawDatabase(t, e), "Resultina", "the returned beneficiary data is sealed")

	raw := rawDatabase(t, e)
	for _, s := range personal {
		require.NotContains(t, raw, s, "the database holds no personal data in clear")
	}
	got := e.Client.Do("GET", "/v1/verifications/"+created.VerificationUUID, nil, nil)
	require.Equal(t, 200, got.Status)
	for _, s := range []string{"Zebulon", "Quartermaine", "NID-7788-XYZ", "42 Wallaby Way"} {
		require.Contains(t, string(got.Body), s, "the API answers it unchanged")
	}
	require.Contains(t, string(e.Client.Do("GET", "/v1/verifications?include=payload", nil, nil).Body), "Featherstonehaugh")

	// A row written before payloads were sealed (the schema of the previous release).
	plain := uuid.NewString()
	_, err := e.DB.Exec(`INSERT INTO verifications (uuid, role, originating_vasp_id, beneficiary_vasp_id, network, asset, amount,
		beneficiary_address, payload, request_sha256) VALUES ($1, 'ORIGINATOR', $2, $3, 'ETHEREUM', 'ETH', 1,
		'0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1', $4, '\\x00')`, plain, et.OurVasp, et.TheirVasp,
		`{"ivms101":{"beneficiary":{"accountNumber":["0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"]},"note":"Legacy Larkspur"}}`)
	require.NoError(t, err)
	require.Contains(t, string(e.Client.Do("GET", "/v1/verifications/"+plain, nil, nil).Body), "Legacy Larkspur", "read as before")

	// Rotation, then rekey: every row under the new key, all still readable.
	rotated, newKey, err := seal.Rotate(et.Keyset(t))
	require.NoError(t, err)
	e2 := et.Start(t, et.Options{DSN: e.DSN, Config: func(c *config.Config) { c.DataKeyset = rotated }})
	s2, err := seal.Load(rotated)
	require.NoError(t, err)
	svc := verification.NewService(e2.DB, network.Default(), et.OurVasp, s2)
	p, err := svc.Rekey(context.Background(), 2) // in two batches
	require.NoError(t, err)
	require.Equal(t, 2, p.Resealed)
	require.Equal(t, 1, p.Remaining)
	p, err = svc.Rekey(context.Background(), 2)
	require.NoError(t, err)
	require.Equal(t, RekeyDone(1), p)
	use, err := svc.KeyUse(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int{strconv.FormatUint(uint64(newKey), 10): 3}, use, "no plain row, no old key left")
	require.Contains(t, string(e2.Client.Do("GET", "/metrics", nil, nil).Body), `enclave_verifications_by_key{key="`+strconv.FormatUint(uint64(newKey), 10)+`"} 3`)
	require.NotContains(t, rawDatabase(t, e2), "Larkspur", "rekey sealed the legacy row")
	var resultKey int64
	require.NoError(t, e2.DB.Get(&resultKey, `SELECT result_key_id FROM verifications WHERE uuid = $1`, inbound))
	require.Equal(t, int64(newKey), resultKey, "rekey sealed the returned beneficiary data anew")
	require.Contains(t, string(e2.Client.Do("GET", "/v1/verifications/"+inbound, nil, nil).Body), "Resultina Quimby")
	for _, id := range []string{created.VerificationUUID, inbound, plain} {
		require.Equal(t, 200, e2.Client.Do("GET", "/v1/verifications/"+id, nil, nil).Status)
	}

	// A wrong keyset, a tampered ciphertext, a ciphertext copied onto another row: an
	// INTERNAL-ERROR for that request, the reason in the log, never another row's data.
	other, err := seal.New()
	require.NoError(t, err)
	e3 := et.Start(t, et.Options{DSN: e.DSN, Config: func(c *config.Config) { c.DataKeyset = other }})
	r := e3.Client.Do("GET", "/v1/verifications/"+created.VerificationUUID, nil, nil)
	require.Equal(t, 500, r.Status)
	require.Contains(t, string(r.Body), "INTERNAL-ERROR")
	require.Contains(t, e3.Logs.String(), "not sealed for this row, altered, or by a key not in ENCLAVE_DATA_KEYSET")
	require.Equal(t, 200, e3.Client.Do("GET", "/v1/verifications", nil, nil).Status, "a list without payloads still answers")
	require.NotEmpty(t, e3.Assess(created.VerificationUUID, ""), "screening reads no personal data: it needs no key")

	_, err = e.DB.Exec(`UPDATE verifications SET payload_sealed = set_byte(payload_sealed, 20, get_byte(payload_sealed, 20) # 1) WHERE uuid = $1`, inbound)
	require.NoError(t, err)
	require.Equal(t, 500, e2.Client.Do("GET", "/v1/verifications/"+inbound, nil, nil).Status, "tampered")
	_, err = e.DB.Exec(`UPDATE verifications SET payload_sealed = (SELECT payload_sealed FROM verifications WHERE uuid = $1) WHERE uuid = $2`,
		created.VerificationUUID, plain)
	require.NoError(t, err)
	r = e2.Client.Do("GET", "/v1/verifications/"+plain, nil, nil)
	require.Equal(t, 500, r.Status, "copied onto another row")
	require.NotContains(t, string(r.Body), "Zebulon")
	for _, s := range personal {
		require.NotContains(t, e2.Logs.String()+e3.Logs.String(), s, "no personal data in the logs")
	}
}

// RekeyDone is the progress of a last batch that sealed n rows.
func RekeyDone(n int) verification.RekeyProgress { return verification.RekeyProgress{Resealed: n} }
