package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

// demoClient tells the stories of `enclave dev --demo` through the API, as the VASP's backend
// and as the demo counterparty would.
type demoClient struct {
	ctx  context.Context
	w    io.Writer
	base string
	st   devState
	rcv  *devReceiver
}

func (d demoClient) say(format string, a ...any) {
	fmt.Fprintf(d.w, time.Now().Format("15:04:05")+" demo "+format+"\n", a...)
}

// post sends body to path, as the VASP's backend or, with peer, signed as the counterparty.
// It returns the status and the answer.
func (d demoClient) post(path string, body any, peer bool) (int, []byte, error) {
	return d.send(path, body, peer, nil)
}

// postWith posts body as the VASP's backend with extra headers.
func (d demoClient) postWith(path string, body any, h http.Header) (int, []byte, error) {
	return d.send(path, body, false, h)
}

func (d demoClient) send(path string, body any, peer bool, extra http.Header) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(d.ctx, "POST", d.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	if peer {
		h, err := webhook.Sign(d.st.PeerSecret, "msg_"+uuid.NewString(), time.Now(), b)
		if err != nil {
			return 0, nil, err
		}
		for k, v := range h {
			req.Header[k] = v
		}
		req.Header.Set("X-Vasp-Id", devCounterparty)
	} else {
		req.Header.Set("Authorization", "Bearer "+d.st.APIKey)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, nil
}

// call posts and wants 200, decoding the answer into out.
func (d demoClient) call(path string, body any, peer bool, out any) error {
	st, raw, err := d.post(path, body, peer)
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("POST %s answered %d: %s", path, st, raw)
	}
	return json.Unmarshal(raw, out)
}

func (d demoClient) assess(verificationUUID string) (string, error) {
	var r struct{ RequestID string }
	err := d.call(kytPath, map[string]string{"verificationUuid": verificationUUID}, false, &r)
	return r.RequestID, err
}

// runDemo tells both stories and returns once every callback has been printed. sim is kytsim,
// when dev runs it (nil when real Chainalysis APIs were named): the monitoring story changes
// its world.
func runDemo(ctx context.Context, w io.Writer, base string, st devState, rcv *devReceiver, sim *kytsim.Server) error {
	d := demoClient{ctx: ctx, w: w, base: base, st: st, rcv: rcv}
	steps := 8
	if sim != nil && rcv != nil {
		steps = 10
	}
	n := 0
	step := func(format string, a ...any) {
		n++
		d.say(fmt.Sprintf("%d/%d: ", n, steps)+format, a...)
	}
	// We send (ORIGINATOR).
	step("we send 1.5 ETH to the sanctioned address %s: creating the verification", devSanctioned)
	v, err := d.sendETH("1.5", devSanctioned)
	if err != nil {
		return err
	}
	step("screening the withdrawal ATTEMPT of verification %s", v.VerificationUUID)
	id, err := d.assess(v.VerificationUUID)
	if err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	step("screening the beneficiary's wallet with Address Screening, waiting for the answer (Prefer: wait=10)")
	code, raw, err := d.postWith("/v1/risk-assessment/chainalysis-address-screening", map[string]string{"verificationUuid": v.VerificationUUID},
		http.Header{"Prefer": {"wait=10"}})
	if err != nil {
		return err
	}
	var screened struct {
		RequestID string `json:"requestId"`
		webhook.ScreeningResultData
	}
	if code != http.StatusOK || json.Unmarshal(raw, &screened) != nil {
		return fmt.Errorf("demo: address screening answered %d: %s", code, raw)
	}
	if a := screened.RiskAssessment.ChainalysisAddressScreening; a.Final() {
		d.say("       answered at once: %s, risk %s (%s)", a.Status, deref(a.Risk), deref(a.RiskReason))
	}
	if err := d.waitTerminal(screeningPath, screened.RequestID); err != nil {
		return err
	}
	step("reporting txHash %s, then screening the TRANSFER", devTxHash)
	if err := d.call("/v1/verifications/tx", map[string]string{"verificationUuid": v.VerificationUUID, "txHash": devTxHash}, false, &struct{}{}); err != nil {
		return err
	}
	if id, err = d.assess(v.VerificationUUID); err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}

	// We receive (BENEFICIARY).
	in := uuid.NewString()
	step("the counterparty %s tells us of a deposit of %s BTC to our address %s (verification %s)",
		devCounterparty, devDepositAmount, devDepositAddress, in)
	if err := d.call("/peer/v1/verifications", map[string]any{
		"verificationUuid": in, "originatingVaspId": devCounterparty, "beneficiaryVaspId": devVasp,
		"assetInfo": map[string]any{"symbol": "BTC", "amount": devDepositAmount},
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"accountNumber": []string{"1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH"}},
			"beneficiary": map[string]any{"accountNumber": []string{devDepositAddress}}}},
	}, true, &struct{}{}); err != nil {
		return err
	}
	step("screening it with KYT before its tx report")
	code, raw, err = d.post(kytPath, map[string]string{"verificationUuid": in}, false)
	if err != nil {
		return err
	}
	if code != http.StatusBadRequest {
		return fmt.Errorf("demo: a deposit screened before its tx report answered %d, not 400: %s", code, raw)
	}
	d.say("       answered %d %s", code, raw)
	step("the counterparty reports its transaction %s", devDepositTx)
	if err := d.call("/peer/v1/verifications/tx", map[string]string{"verificationUuid": in, "txHash": devDepositTx}, true, &struct{}{}); err != nil {
		return err
	}
	step("screening the deposit (a received TRANSFER)")
	if id, err = d.assess(in); err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	if steps > 8 {
		if err := d.monitoring(step, sim); err != nil {
			return err
		}
	}
	d.say("done: every callback received")
	return nil
}

// sendETH creates the verification of amount ETH from our wallet to beneficiary.
func (d demoClient) sendETH(amount, beneficiary string) (v struct{ VerificationUUID string }, err error) {
	err = d.call("/v1/verifications", map[string]any{
		"beneficiaryVaspId": devCounterparty,
		"assetInfo":         map[string]any{"symbol": "ETH", "network": "Ethereum", "amount": amount},
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"accountNumber": []string{devOurWallet}},
			"beneficiary": map[string]any{"accountNumber": []string{beneficiary}}}},
	}, false, &v)
	return v, err
}

// monitoring tells the story of an alert raised later: a transfer to a clean wallet, processed
// without alerts; then Chainalysis identifies the wallet as sanctioned, and the monitoring sync
// brings the new alert in as a CHAINALYSIS_KYT_ALERT.
func (d demoClient) monitoring(step func(string, ...any), sim *kytsim.Server) error {
	step("we send 0.2 ETH to the clean private wallet %s, report txHash %s and screen the TRANSFER", devLaterSanctioned, devLaterTxHash)
	v, err := d.sendETH("0.2", devLaterSanctioned)
	if err != nil {
		return err
	}
	if err := d.call("/v1/verifications/tx", map[string]string{"verificationUuid": v.VerificationUUID, "txHash": devLaterTxHash}, false, &struct{}{}); err != nil {
		return err
	}
	id, err := d.assess(v.VerificationUUID)
	if err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	step("Chainalysis identifies %s as sanctioned (kytsim: PUT /_sim/addresses/…); the monitoring sync pulls the new alert in", devLaterSanctioned)
	req, _ := http.NewRequestWithContext(d.ctx, "PUT", sim.URL+"/_sim/addresses/"+devLaterSanctioned,
		strings.NewReader(`{"category":"sanctioned entity","cluster":"OFAC SDN Demo Designation 2026-11-23"}`))
	req.Header.Set("Token", sim.Token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo: kytsim refused the re-rating: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	d.say("       waiting for the CHAINALYSIS_KYT_ALERT of %s…", id)
	for !d.rcv.alerted(id) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: no CHAINALYSIS_KYT_ALERT for %s within a minute", id)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// The two assessment routes the demo waits on.
const (
	kytPath       = "/v1/risk-assessment/chainalysis-kyt"
	screeningPath = "/v1/risk-assessment/chainalysis-address-screening"
)

// waitTerminal waits for an assessment's terminal callback (or, when callbacks go elsewhere,
// for the assessment to be terminal), at most a minute, saying what it waits for.
func (d demoClient) waitTerminal(path, requestID string) error {
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	d.say("       requestId %s: waiting for Chainalysis and the callback…", requestID)
	for {
		if d.rcv != nil && d.rcv.terminal(requestID) {
			return nil
		}
		if d.rcv == nil {
			req, _ := http.NewRequestWithContext(ctx, "GET", d.base+path+"/"+requestID, nil)
			req.Header.Set("Authorization", "Bearer "+d.st.APIKey)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				var r struct { // either assessment: both carry their status here
					RiskAssessment map[string]json.RawMessage `json:"riskAssessment"`
				}
				json.NewDecoder(resp.Body).Decode(&r) //nolint:errcheck
				resp.Body.Close()
				for _, a := range r.RiskAssessment {
					var s struct{ Status string }
					if json.Unmarshal(a, &s) == nil && (s.Status == webhook.StatusProcessed || s.Status == webhook.StatusError) {
						d.say("       %s is %s", requestID, s.Status)
						return nil
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: assessment %s did not finish within a minute", requestID)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// devReceiver stands in for the VASP's backend: it checks each callback's signature and bearer
// token and prints it for a person to read.
type devReceiver struct {
	srv           *httptest.Server
	secret, token string
	out           io.Writer

	mu     sync.Mutex
	done   map[string]bool
	alerts map[string]bool // requestIds a CHAINALYSIS_KYT_ALERT arrived for
}

func (r *devReceiver) alerted(requestID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.alerts[requestID]
}

func newDevReceiver(secret, token string, out io.Writer) *devReceiver {
	r := &devReceiver{secret: secret, token: token, out: out, done: map[string]bool{}, alerts: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *devReceiver) URL() string { return r.srv.URL + "/callbacks" }
func (r *devReceiver) Close()      { r.srv.Close() }

func (r *devReceiver) terminal(requestID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.done[requestID]
}

func (r *devReceiver) serve(w http.ResponseWriter, req *http.Request) {
	cb, err := webhook.Parse(r.secret, req)
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now().Format("15:04:05.000")
	if err != nil || req.Header.Get("Authorization") != "Bearer "+r.token {
		fmt.Fprintf(r.out, "\n%s ✗ callback refused: %v\n", now, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if cb.CallbackType == webhook.TypeAddressScreeningResult {
		r.printScreening(now, cb)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	d, err := cb.KYTResult()
	if err != nil {
		fmt.Fprintf(r.out, "\n%s ✗ callback %s: %v\n", now, cb.CallbackType, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	k := d.RiskAssessment.ChainalysisKYT
	fmt.Fprintf(r.out, "\n── %s callback %s (webhook-id %s, signature verified) ──\n", now, cb.CallbackType, cb.ID)
	fmt.Fprintf(r.out, "  verification %s  request %s\n", d.VerificationUUID, k.RequestID)
	fmt.Fprintf(r.out, "  %s %s: %s %s on %s, address %s\n", k.APIType, k.Direction, k.Amount, k.Asset, k.Network, k.OutputAddress)
	if k.TransferRef != nil {
		fmt.Fprintf(r.out, "  transferRef %s\n", *k.TransferRef)
	}
	switch {
	case k.Error != nil:
		fmt.Fprintf(r.out, "  status %s: %s %s\n", k.Status, k.Error.Code, k.Error.Message)
	case k.AlertCount != nil:
		fmt.Fprintf(r.out, "  status %s, %d alert(s); the transfer is worth $%s (usdPrice)\n", k.Status, *k.AlertCount, deref(k.USDPrice))
	default:
		fmt.Fprintf(r.out, "  status %s\n", k.Status)
	}
	if cb.CallbackType == webhook.TypeKYTAlert {
		fmt.Fprintf(r.out, "  raised later by Chainalysis's monitoring; only the new alert(s):\n")
		r.alerts[k.RequestID] = true
	}
	for _, a := range d.RiskAssessment.ChainalysisKYTAlerts {
		fmt.Fprintf(r.out, "    %-6s %s: %s ($%s, %s, %s)\n", a.AlertLevel, deref(a.EntityCategory), deref(a.ServiceName), a.AlertAmount, a.ExposureType, a.Source)
	}
	if k.Final() {
		r.done[k.RequestID] = true
	}
	w.WriteHeader(http.StatusNoContent)
}

// printScreening prints a CHAINALYSIS_ADDRESS_SCREENING_RESULT. Must hold r.mu.
func (r *devReceiver) printScreening(now string, cb webhook.Callback) {
	d, err := cb.AddressScreeningResult()
	if err != nil {
		fmt.Fprintf(r.out, "\n%s ✗ callback %s: %v\n", now, cb.CallbackType, err)
		return
	}
	a := d.RiskAssessment.ChainalysisAddressScreening
	fmt.Fprintf(r.out, "\n── %s callback %s (webhook-id %s, signature verified) ──\n", now, cb.CallbackType, cb.ID)
	fmt.Fprintf(r.out, "  verification %s  request %s\n", d.VerificationUUID, a.RequestID)
	fmt.Fprintf(r.out, "  address %s (counterparty %s)\n", a.Address, a.CounterpartyVaspID)
	if a.Error != nil {
		fmt.Fprintf(r.out, "  status %s: %s %s\n", a.Status, a.Error.Code, a.Error.Message)
	} else {
		fmt.Fprintf(r.out, "  status %s, risk %s: %s\n  cluster %s\n", a.Status, deref(a.Risk), deref(a.RiskReason), a.Cluster)
	}
	if a.Final() {
		r.done[a.RequestID] = true
	}
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
