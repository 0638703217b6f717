package trp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/trisacrypto/trisa/pkg/ivms101"
	"github.com/trisacrypto/trisa/pkg/openvasp"
	"github.com/trisacrypto/trisa/pkg/openvasp/client"
	"github.com/trisacrypto/trisa/pkg/openvasp/traddr"
	trp "github.com/trisacrypto/trisa/pkg/openvasp/trp/v3"
	"github.com/trisacrypto/trisa/pkg/slip0044"

	"github.com/travelrule/enclave/internal/config"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/webhook"
)

func TestMain(m *testing.M) { et.Main(m, func() {}) }

const wait = 20 * time.Second

const (
	originatorName  = "Ottoline Brackenridge"
	beneficiaryName = "Casimir Undertow"
	beneficiaryAddr = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0a"
	originatorAddr  = "0x3d21a92285bf17cbdde5f77531b8b58ac400288a"
)

// person is an IVMS101 natural person as the standard's JSON writes it (and TRISA reads it).
func person(name string) map[string]any {
	return map[string]any{"naturalPerson": map[string]any{"name": map[string]any{"nameIdentifier": []any{
		map[string]any{"primaryIdentifier": name, "nameIdentifierType": "LEGL"}}}}}
}

// verification is a POST /v1/verifications body of amount ETH to the TRP counterparty named
// by to: {"beneficiaryVaspId": …} or {"beneficiaryTravelAddress": …}.
func verification(amount string, to map[string]any) []byte {
	b := map[string]any{
		"assetInfo": map[string]any{"symbol": "ETH", "amount": amount},
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"originatorPersons": []any{person(originatorName)}, "accountNumber": []string{originatorAddr}},
			"beneficiary": map[string]any{"beneficiaryPersons": []any{person(beneficiaryName)}, "accountNumber": []string{beneficiaryAddr}},
		}},
	}
	for k, v := range to {
		b[k] = v
	}
	out, _ := json.Marshal(b)
	return out
}


// theirBeneficiary is a TRP beneficiary VASP built from TRISA's handlers, behind mTLS with the
// test CA: TransferInquiry at /inquiry decides by the inquiry's amount, TransferConfirmation at
// /confirm records what the originator confirms.
type theirBeneficiary struct {
	srv       *httptest.Server
	url       string // srv.URL with localhost: TRISA's Travel Address codec cannot read an IP address with a port
	mu        sync.Mutex
	inquiries []*trp.Inquiry
	confirmed []*trp.Confirmation
}

func (b *theirBeneficiary) OnInquiry(in *trp.Inquiry) (*trp.Resolution, error) {
	b.mu.Lock()
	b.inquiries = append(b.inquiries, in)
	b.mu.Unlock()
	switch {
	case in.Amount == 2.5:
		return &trp.Resolution{Rejected: "sanctioned wallet"}, nil
	case in.Amount == 3.5:
		return nil, nil // decided later: the handler answers {"version"}
	case in.Amount == 4.5: // approves another wallet than the one asked about
		return &trp.Resolution{Approved: &trp.Approval{Address: "0x0000000000000000000000000000000000000001", Callback: b.url + "/confirm"}}, nil
	}
	return &trp.Resolution{Approved: &trp.Approval{Address: beneficiaryAddr, Callback: b.url + "/confirm"}}, nil
}

func (b *theirBeneficiary) OnConfirmation(c *trp.Confirmation) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.confirmed = append(b.confirmed, c)
	return nil
}

func (b *theirBeneficiary) inquiry(t *testing.T, i int) *trp.Inquiry {
	t.Helper()
	var in *trp.Inquiry
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.inquiries) > i {
			in = b.inquiries[i]
		}
		return in != nil
	}, wait, 20*time.Millisecond)
	return in
}

func (b *theirBeneficiary) confirmation(t *testing.T, n int) []*trp.Confirmation {
	t.Helper()
	var out []*trp.Confirmation
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		out = append([]*trp.Confirmation(nil), b.confirmed...)
		return len(out) >= n
	}, wait, 20*time.Millisecond)
	return out
}

func startTheirBeneficiary(t *testing.T, certs et.TRPCerts) *theirBeneficiary {
	b := &theirBeneficiary{}
	mux := http.NewServeMux()
	mux.Handle("/inquiry", openvasp.TransferInquiry(b))
	mux.Handle("/confirm", openvasp.TransferConfirmation(b))
	b.srv = httptest.NewUnstartedServer(mux)
	b.srv.TLS = certs.ClientTLS(t)
	b.srv.StartTLS()
	t.Cleanup(b.srv.Close)
	b.url = localhost(b.srv.URL)
	return b
}

// trisaClient is TRISA's TRP client with the test certificates.
func trisaClient(t *testing.T, certs et.TRPCerts) *client.Client {
	c, err := client.New(client.WithTLSConfig(certs.ClientTLS(t)))
	require.NoError(t, err)
	return c
}

// TestOurInquiryToTRISAsHandler: we are the originator, TRISA's handlers the beneficiary,
// over mTLS. A Travel Address TRISA's codec made is decoded by us; the inquiry TRISA's handler
// reads carries the asset as a SLIP-0044 coin type, the amount, our callback and the IVMS101 as
// the spec names it. Approved at once is VERIFIED and our tx report reaches its confirmation
// handler as {"txid"}; rejected is DENIED with the reason; decided later — TRISA's client
// resolving to our callback — is VERIFIED, and our cancel reaches it as {"canceled"}.
func TestOurInquiryToTRISAsHandler(t *testing.T) {
	t.Parallel()
	certs := et.TRPTLS(t)
	them := startTheirBeneficiary(t, certs)
	ours := et.Start(t, et.Options{TRPMutualTLS: true, Config: func(c *config.Config) {
		c.Peers = append(c.Peers, config.Peer{VaspID: "trisa-vasp", Name: "TRISA VASP", Protocol: config.ProtocolTRP, URL: them.url + "/inquiry"})
	}})
	ta, err := traddr.Make(them.url + "/inquiry")
	require.NoError(t, err)

	// Approved at once, reached by TRISA's Travel Address.
	approved := et.Create(t, ours, verification("1.5", map[string]any{"beneficiaryTravelAddress": ta}))
	got := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, approved, wait)
	require.Equal(t, "VERIFIED", got.Verification.Result, "%v", got.Verification.Message)
	in := them.inquiry(t, 0)
	require.Equal(t, slip0044.CoinType(60), in.Asset.SLIP044)
	require.Equal(t, 1.5, in.Amount)
	require.True(t, strings.HasPrefix(in.Callback, ours.TRPURL+"/callbacks/"), in.Callback)
	require.Equal(t, openvasp.APIVersion, in.Info.APIVersion)
	require.NotEmpty(t, in.Info.RequestIdentifier)
	require.NotNil(t, in.IVMS101.Originator)
	require.Equal(t, originatorName, in.IVMS101.Originator.OriginatorPersons[0].GetNaturalPerson().Name.NameIdentifiers[0].PrimaryIdentifier)
	require.Equal(t, []string{beneficiaryAddr}, in.IVMS101.Beneficiary.AccountNumbers)
	require.NotNil(t, in.IVMS101.OriginatingVasp, "originatingVASP named")
	require.NotNil(t, in.IVMS101.BeneficiaryVasp, "beneficiaryVASP named")

	ours.ReportTx(approved, et.TxHash(approved))
	require.Equal(t, et.TxHash(approved), them.confirmation(t, 1)[0].TXID)

	// Rejected at once, reached through the peers file.
	rejected := et.Create(t, ours, verification("2.5", map[string]any{"beneficiaryVaspId": "trisa-vasp"}))
	r := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, rejected, wait)
	require.Equal(t, "DENIED", r.Verification.Result)
	require.Contains(t, *r.Verification.Message, "sanctioned wallet")

	// Decided later: TRISA's client resolves to our callback.
	later := et.Create(t, ours, verification("3.5", map[string]any{"beneficiaryVaspId": "trisa-vasp"}))
	in = them.inquiry(t, 2)
	cli := trisaClient(t, certs)
	require.NoError(t, cli.Resolve(context.Background(), &trp.Resolution{
		Info:     &trp.Info{Address: in.Callback, RequestIdentifier: in.Info.RequestIdentifier},
		Approved: &trp.Approval{Address: beneficiaryAddr, Callback: them.url + "/confirm"}}))
	require.Equal(t, "VERIFIED", ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, later, wait).Verification.Result)
	cancel, _ := json.Marshal(map[string]any{"verificationUuid": later, "result": "TRANSFER_ERROR", "reason": "UNDEFINED-ERROR", "message": "user withdrew"})
	require.Equal(t, 200, ours.Client.Do("POST", "/v1/verifications/error", cancel, nil).Status)
	c := them.confirmation(t, 2)[1]
	require.Empty(t, c.TXID)
	require.Contains(t, c.Canceled, "user withdrew")
	require.Len(t, ours.Receiver.OfType(webhook.TypeVerificationResult, later), 1)

	// Approved for another wallet: ERROR / BENEFICIARY-ACCOUNT-NOT-MATCHED, and it is told so.
	moved := et.Create(t, ours, verification("4.5", map[string]any{"beneficiaryVaspId": "trisa-vasp"}))
	m := ours.Receiver.WaitFor(t, webhook.TypeVerificationResult, moved, wait)
	require.Equal(t, "ERROR", m.Verification.Result)
	require.Equal(t, "BENEFICIARY-ACCOUNT-NOT-MATCHED", *m.Verification.Reason)
	require.Contains(t, them.confirmation(t, 3)[2].Canceled, "BENEFICIARY-ACCOUNT-NOT-MATCHED")

	// An unknown callback is 404.
	err = cli.Resolve(context.Background(), &trp.Resolution{Info: &trp.Info{Address: ours.TRPURL + "/callbacks/nope"}, Rejected: "x"})
	var se *trp.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusNotFound, se.Code)
}

// theirOriginator receives our decision on its inquiry at its callback, checked by TRISA's
// APIChecks and read as TRISA's trp.Resolution.
type theirOriginator struct {
	srv *httptest.Server
	url string
	mu  sync.Mutex
	got map[string]*trp.Resolution // by path
}

func startTheirOriginator(t *testing.T, certs et.TRPCerts) *theirOriginator {
	o := &theirOriginator{got: map[string]*trp.Resolution{}}
	o.srv = httptest.NewUnstartedServer(openvasp.APIChecks(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res trp.Resolution
		if err := json.NewDecoder(r.Body).Decode(&res); err != nil || res.Validate() != nil {
			http.Error(w, "bad resolution", http.StatusBadRequest)
			return
		}
		o.mu.Lock()
		o.got[r.URL.Path] = &res
		o.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})))
	o.srv.TLS = certs.ClientTLS(t)
	o.srv.StartTLS()
	t.Cleanup(o.srv.Close)
	o.url = localhost(o.srv.URL)
	return o
}

func (o *theirOriginator) resolution(t *testing.T, path string) *trp.Resolution {
	t.Helper()
	var res *trp.Resolution
	require.Eventually(t, func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		res = o.got[path]
		return res != nil
	}, wait, 20*time.Millisecond)
	return res
}

// TestTRISAsInquiryToUs: TRISA's client is the originator and sends its inquiry to the Travel
// Address we issued (decoded by TRISA's codec), over mTLS; we answer {"version"}, ask our
// VASP, and POST approved (our wallet and our callback) or rejected to its callback. Its
// confirmation reaches our VASP as TX_REPORT, its cancel as ERROR_REPORT; the amount arrives as
// it was written.
func TestTRISAsInquiryToUs(t *testing.T) {
	t.Parallel()
	certs := et.TRPTLS(t)
	them := startTheirOriginator(t, certs)
	ours := et.Start(t, et.Options{TRPMutualTLS: true, VerifyUser: true})
	ours.Receiver.VerifyUser(func(req et.VerifyUserRequest) (int, any) {
		if strings.Contains(string(req.AssetInfo), `"2.5"`) {
			return 200, map[string]any{"result": "DENIED", "reason": "BLACKLISTED", "message": "not ours to take"}
		}
		return 200, map[string]any{"result": "VERIFIED", "reason": "OK"}
	})
	ta, err := exchange.TRPAddress(ours.TRPURL, beneficiaryAddr)
	require.NoError(t, err)
	decoded, err := traddr.DecodeURL(ta)
	require.NoError(t, err, "TRISA's codec reads our Travel Address")
	require.Equal(t, ours.TRPURL+"/transfers/"+beneficiaryAddr+"?t=i", decoded)

	cli := trisaClient(t, certs)
	var ivms ivms101.IdentityPayload
	raw, _ := json.Marshal(map[string]any{
		"originator":  map[string]any{"originatorPersons": []any{person(originatorName)}, "accountNumber": []string{originatorAddr}},
		"beneficiary": map[string]any{"beneficiaryPersons": []any{person(beneficiaryName)}},
	})
	require.NoError(t, json.Unmarshal(raw, &ivms))
	inquire := func(amount float64, path string) *trp.Resolution {
		t.Helper()
		res, err := cli.Inquiry(context.Background(), &trp.Inquiry{
			Info:  &trp.Info{Address: ta},
			Asset: &trp.Asset{SLIP044: slip0044.CoinType(60)}, Amount: amount, Callback: them.url + path, IVMS101: &ivms})
		require.NoError(t, err, "%s", ours.Logs.String())
		return res
	}

	// Approved, then confirmed.
	res := inquire(1.25, "/approved")
	require.Equal(t, openvasp.APIVersion, res.Version, "we decide later")
	approved := them.resolution(t, "/approved")
	require.NotNil(t, approved.Approved)
	require.Equal(t, beneficiaryAddr, approved.Approved.Address)
	var id string
	require.NoError(t, ours.DB.Get(&id, `SELECT uuid FROM verifications WHERE amount = 1.25`))
	asked := ours.Receiver.Asked()
	require.Len(t, asked, 1)
	require.Contains(t, string(asked[0].IVMS101), originatorName)
	require.Contains(t, string(asked[0].IVMS101), beneficiaryAddr, "the Travel Address's wallet is the beneficiary's account")
	hash := et.TxHash(id)
	require.NoError(t, cli.Confirm(context.Background(), &trp.Confirmation{Info: &trp.Info{Address: approved.Approved.Callback}, TXID: hash}))
	require.Equal(t, hash, ours.Receiver.WaitFor(t, webhook.TypeTxReport, id, wait).TxReport.TxHash)

	// Rejected.
	inquire(2.5, "/rejected")
	rejected := them.resolution(t, "/rejected")
	require.Nil(t, rejected.Approved)
	require.Contains(t, rejected.Rejected, "BLACKLISTED")

	// Approved, then canceled.
	inquire(4, "/canceled")
	approved = them.resolution(t, "/canceled")
	require.NoError(t, cli.Confirm(context.Background(), &trp.Confirmation{Info: &trp.Info{Address: approved.Approved.Callback}, Canceled: "customer changed their mind"}))
	require.NoError(t, ours.DB.Get(&id, `SELECT uuid FROM verifications WHERE amount = 4`))
	require.Contains(t, ours.Receiver.WaitFor(t, webhook.TypeErrorReport, id, wait).ErrorReport.Message, "customer changed their mind")

	// An inquiry for a wallet that is not one of the asset's network: 400 naming the TRP field.
	_, err = cli.Inquiry(context.Background(), &trp.Inquiry{Info: &trp.Info{Address: mustTA(t, ours.TRPURL, "not-an-address")},
		Asset: &trp.Asset{SLIP044: slip0044.CoinType(60)}, Amount: 1, Callback: them.url + "/x", IVMS101: &ivms})
	var se *trp.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusBadRequest, se.Code)

	// Headers as TRISA's handlers check them: 400 without api-version, 415 for another type,
	// 405 for a GET; all without a 500.
	tlsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t)}}
	for name, c := range map[string]struct {
		method, version, ctype string
		want                   int
	}{
		"NoVersion":   {"POST", "", "application/json", 400},
		"Version2":    {"POST", "2.0.0", "application/json", 400},
		"NotJSON":     {"POST", "3.1.0", "text/plain", 415},
		"GET":         {"GET", "3.1.0", "application/json", 405},
		"EmptyObject": {"POST", "3.1.0", "application/json", 400},
	} {
		req, _ := http.NewRequest(c.method, ours.TRPURL+"/transfers/"+beneficiaryAddr, strings.NewReader(`{}`))
		req.Header.Set("api-version", c.version)
		req.Header.Set("request-identifier", "9a3c2e6e-52a8-4c2f-9a0a-2f0f6f1b7a10")
		req.Header.Set("content-type", c.ctype)
		resp, err := tlsClient.Do(req)
		require.NoError(t, err, name)
		var e struct{ Code, Message string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e), name)
		resp.Body.Close()
		require.Equal(t, c.want, resp.StatusCode, "%s: %s", name, e.Message)
		require.NotEmpty(t, e.Code, name)
	}

	// Without a client certificate signed by our CA, the listener refuses the connection.
	plain := &http.Client{Transport: &http.Transport{TLSClientConfig: certs.ClientTLS(t).Clone()}}
	plain.Transport.(*http.Transport).TLSClientConfig.Certificates = nil
	_, err = plain.Get(ours.TRPURL + "/version")
	require.Error(t, err, "mTLS: no client certificate, no answer")
}

// localhost names a test server's loopback address by name.
func localhost(u string) string { return strings.Replace(u, "127.0.0.1", "localhost", 1) }

func mustTA(t *testing.T, base, wallet string) string {
	ta, err := exchange.TRPAddress(base, wallet)
	require.NoError(t, err)
	return ta
}
