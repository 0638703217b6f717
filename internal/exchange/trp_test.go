package exchange_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/webhook"
)

// startTRPPair starts two enclaves that speak TRP to each other, each with its TRP listener:
// ours names theirs in its peers file as a TRP counterparty (its inquiry endpoint), theirs
// asks its VASP's Verify User API. mutualTLS serves both listeners behind mTLS.
func startTRPPair(t *testing.T, mutualTLS bool) (ours, theirs *enclavetest.Enclave) {
	t.Helper()
	trpSrvs := [2]*httptest.Server{httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)}
	scheme := map[bool]string{true: "https://", false: "http://"}[mutualTLS]
	return enclavetest.StartPair(t, func(i int, o *enclavetest.Options) {
		o.TRP, o.TRPMutualTLS, o.TRPServer = !mutualTLS, mutualTLS, trpSrvs[i]
		o.VerifyUser = i == 1
		if i == 0 {
			o.Config = func(c *config.Config) {
				c.Peers = []config.Peer{{VaspID: enclavetest.TheirVasp, Name: "Their VASP", Protocol: config.ProtocolTRP,
					URL: scheme + trpSrvs[1].Listener.Addr().String() + "/transfers"}}
				c.PeerProbeInterval = 200 * time.Millisecond
			}
		}
	})
}

// TestTRPCounterpartyOfThePeersFile: a counterparty the peers file says speaks TRP is sent
// the verification as a TRP inquiry; its approval (sent later, to our callback) is VERIFIED
// with one VERIFICATION_RESULT, our tx report reaches it as {"txid"} and its VASP as
// TX_REPORT; a denial is DENIED with the reason in the message; and no raw row on either side
// holds a name. Both listeners are behind mutual TLS.
func TestTRPCounterpartyOfThePeersFile(t *testing.T) {
	t.Parallel()
	ours, theirs := startTRPPair(t, true)
	theirs.Receiver.VerifyUser(beneficiaryVASP)

	id := enclavetest.Create(t, ours, body("1.5", beneficiaryAddr, beneficiaryName))
	got := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait)
	require.Equal(t, "VERIFIED", got.Verification.Result)
	require.Equal(t, "OK", *got.Verification.Reason)

	asked := theirs.Receiver.Asked()
	require.Len(t, asked, 1)
	require.Contains(t, string(asked[0].IVMS101), originatorName, "the originator's IVMS101 reaches the beneficiary VASP")
	require.JSONEq(t, `{"symbol":"ETH","network":"ETHEREUM","amount":"1.5"}`, string(asked[0].AssetInfo), "the amount exactly as sent")

	hash := enclavetest.TxHash(id)
	ours.ReportTx(id, hash)
	var inbound string
	require.NoError(t, theirs.DB.Get(&inbound, `SELECT uuid FROM verifications WHERE role = 'BENEFICIARY'`))
	require.Equal(t, hash, theirs.Receiver.WaitFor(t, webhook.TypeTxReport, inbound, wait).TxReport.TxHash)

	denied := enclavetest.Create(t, ours, body("2.5", beneficiaryAddr, beneficiaryName))
	d := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, denied, wait)
	require.Equal(t, "DENIED", d.Verification.Result)
	require.Contains(t, *d.Verification.Message, "BLACKLISTED", "the TRP rejection's reason is kept in the message")

	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, id), 1)
	// The directory probes a TRP counterparty at its endpoint (behind mTLS): UP.
	require.Eventually(t, func() bool {
		r := ours.Client.Do("GET", "/v1/vasps", nil, nil)
		return r.Status == 200 && strings.Contains(string(r.Body), `"health":"UP"`)
	}, wait, 50*time.Millisecond)
	for _, e := range []*enclavetest.Enclave{ours, theirs} {
		for _, q := range []string{`SELECT row_to_json(v)::text FROM verifications v`, `SELECT row_to_json(c)::text FROM callbacks c`,
			`SELECT row_to_json(m)::text FROM peer_messages m`, `SELECT row_to_json(x)::text FROM trp_transfers x`, `SELECT args::text FROM river_job`} {
			var rows []string
			require.NoError(t, e.DB.Select(&rows, q))
			for _, r := range rows {
				require.NotContains(t, r, originatorName, q)
				require.NotContains(t, r, beneficiaryName, q)
			}
		}
		require.NotContains(t, e.Logs.String(), originatorName)
	}
}

// TestTRPTravelAddress: a verification that names the beneficiary by a Travel Address (no
// beneficiaryVaspId) goes over TRP to the URL inside; the originator's cancel reaches the
// beneficiary's VASP as ERROR_REPORT; an address that is not one, or whose checksum is wrong,
// is 400 naming beneficiaryTravelAddress.
func TestTRPTravelAddress(t *testing.T) {
	t.Parallel()
	ours, theirs := startTRPPair(t, false)
	theirs.Receiver.VerifyUser(beneficiaryVASP)
	ta, err := exchange.TRPAddress(theirs.TRPURL, beneficiaryAddr)
	require.NoError(t, err)

	var b map[string]any
	require.NoError(t, json.Unmarshal(body("1.25", beneficiaryAddr, beneficiaryName), &b))
	delete(b, "beneficiaryVaspId")
	b["beneficiaryTravelAddress"] = ta
	id := enclavetest.Create(t, ours, mustMarshal(b))
	require.Equal(t, "VERIFIED", ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, id, wait).Verification.Result)

	st, msg := post(t, ours, "/v1/verifications/error", map[string]any{"verificationUuid": id, "result": "TRANSFER_ERROR", "reason": "UNDEFINED-ERROR", "message": "user withdrew"})
	require.Equal(t, 200, st, msg)
	var inbound string
	require.NoError(t, theirs.DB.Get(&inbound, `SELECT uuid FROM verifications WHERE role = 'BENEFICIARY'`))
	er := theirs.Receiver.WaitFor(t, webhook.TypeErrorReport, inbound, wait)
	require.Contains(t, er.ErrorReport.Message, "user withdrew")

	// A raw inquiry to theirs: problems named by the TRP fields.
	inquire := func(wallet, amount string) (int, string) {
		b := `{"asset":{"slip0044":60},"amount":` + amount + `,"callback":"http://localhost:1/cb","IVMS101":{"beneficiary":{}}}`
		req, _ := http.NewRequest("POST", theirs.TRPURL+"/transfers/"+wallet, strings.NewReader(b))
		req.Header.Set("api-version", "3.1.0")
		req.Header.Set("request-identifier", "b0a4c1d2-0000-4000-8000-000000000001")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	st, msg = inquire("not-an-address", `"1"`)
	require.Equal(t, 400, st, msg)
	require.Contains(t, msg, `"message":"IVMS101.beneficiary.accountNumber[0]: \"not-an-address\" is not an address`)
	st, msg = inquire(beneficiaryAddr, `"-1"`)
	require.Equal(t, 400, st, msg)
	require.Contains(t, msg, `"message":"amount: want a positive decimal`)

	for name, bad := range map[string]string{"NotAnAddress": "https://example.com", "Checksum": ta[:len(ta)-1] + "z"} {
		b["beneficiaryTravelAddress"] = bad
		r := ours.Client.Do("POST", "/v1/verifications", mustMarshal(b), nil)
		require.Equal(t, 400, r.Status, name)
		require.Contains(t, string(r.Body), "beneficiaryTravelAddress", name)
	}
}

func mustMarshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
