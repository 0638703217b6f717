package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/webhook"
)

// demoSide is one VASP of the demo: its enclave's API, the key its backend calls it with, and
// its backend. Callbacks reach the backend unless ENCLAVE_CALLBACK_URL sent ours elsewhere.
type demoSide struct {
	// whose is printed before what the side receives: "our", "the counterparty's".
	whose, base, apiKey string
	backend             *devBackend
	callbacksHere       bool
}

// demoClient tells the stories of `enclave dev --demo` through the two enclaves' APIs, as each
// VASP's backend would.
type demoClient struct {
	ctx      context.Context
	w        io.Writer
	us, them demoSide
}

func (d demoClient) say(format string, a ...any) {
	fmt.Fprintf(d.w, time.Now().Format("15:04:05")+" demo "+format+"\n", a...)
}

// post sends body to path on side's enclave, as its VASP's backend, with extra headers. It
// returns the status and the answer.
func (d demoClient) post(s demoSide, path string, body any, extra http.Header) (int, []byte, error) {
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(d.ctx, "POST", s.base+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
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
func (d demoClient) call(s demoSide, path string, body any, out any) error {
	st, raw, err := d.post(s, path, body, nil)
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("demo: POST %s on %s enclave answered %d: %s", path, s.whose, st, raw)
	}
	return json.Unmarshal(raw, out)
}

func (d demoClient) assess(verificationUUID string) (string, error) {
	var r struct{ RequestID string }
	err := d.call(d.us, kytPath, map[string]string{"verificationUuid": verificationUUID}, &r)
	return r.RequestID, err
}

// send creates a verification on from's enclave to VASP to: amount of symbol from originator's
// wallet to beneficiary's, naming both (the beneficiary only when it has a name). It returns
// its uuid.
func (d demoClient) send(from demoSide, to, symbol, network, amount string, originator devCustomer, beneficiary devCustomer) (string, error) {
	asset := map[string]any{"symbol": symbol, "amount": amount}
	if network != "" {
		asset["network"] = network
	}
	ben := map[string]any{"accountNumber": []string{beneficiary.Wallet}}
	if beneficiary.First != "" {
		ben["beneficiaryPersons"] = []any{devPerson(beneficiary.First, beneficiary.Last)}
	}
	var v struct{ VerificationUUID string }
	err := d.call(from, "/v1/verifications", map[string]any{
		"beneficiaryVaspId": to, "requiredBeneficiaryInfo": "ACCOUNT_NUMBER,NATURAL_PERSON_NAME", "assetInfo": asset,
		"payload": map[string]any{"ivms101": map[string]any{
			"originator":  map[string]any{"originatorPersons": []any{devPerson(originator.First, originator.Last)}, "accountNumber": []string{originator.Wallet}},
			"beneficiary": ben}},
	}, &v)
	return v.VerificationUUID, err
}

// reportTx reports side's transaction of verification id.
func (d demoClient) reportTx(s demoSide, id, hash string) error {
	return d.call(s, "/v1/verifications/tx", map[string]string{"verificationUuid": id, "txHash": hash}, &struct{}{})
}

// The people of the demo's transfers who are not in a book: the originators, customers of
// the sending VASP's, whose wallets are the story's.
var (
	devOurSender   = devCustomer{"Charles", "Babbage", devOurWallet}
	devTheirSender = devCustomer{"Alan", "Turing", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH"}
)

// runDemo tells the stories of both VASPs and returns once every callback of both sides has
// been printed. sim is kytsim, when dev runs it (nil when real Chainalysis APIs were named):
// the monitoring story changes its world.
func runDemo(ctx context.Context, w io.Writer, us, them demoSide, sim *kytsim.Server, counterparty *devEnclave) error {
	d := demoClient{ctx: ctx, w: w, us: us, them: them}
	steps := 10
	if sim != nil && us.callbacksHere {
		steps = 12
	}
	n := 0
	step := func(format string, a ...any) {
		n++
		d.say(fmt.Sprintf("%d/%d: ", n, steps)+format, a...)
	}
	grace := theirBook.Customers[0]
	ada := ourBook.Customers[0]

	// Before sending: who can we send to, and does the beneficiary VASP know the wallet?
	step("the counterparties we can send to (GET /v1/vasps): waiting for the demo counterparty to show UP (probed every 2 s)")
	if err := d.waitHealth("UP"); err != nil {
		return err
	}
	step("checking the account before sending (POST /v1/verifications/account): %s's wallet and name", grace.name())
	if err := d.checkAccount(grace, "VERIFIED"); err != nil {
		return err
	}

	// We send (ORIGINATOR).
	step("we send 1.5 ETH to %s, a customer of the counterparty: its enclave asks its VASP (Verify User)", grace.name())
	v, err := d.send(d.us, devCounterparty, "ETH", "Ethereum", "1.5", devOurSender, grace)
	if err != nil {
		return err
	}
	if err := d.waitResult(d.us, v, "VERIFIED"); err != nil {
		return err
	}
	step("verified: screening the withdrawal ATTEMPT of verification %s", v)
	id, err := d.assess(v)
	if err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	step("reporting txHash %s: the counterparty's VASP gets TX_REPORT", devTxHash)
	if err := d.reportTx(d.us, v, devTxHash); err != nil {
		return err
	}
	if err := d.waitCallback(d.them, webhook.TypeTxReport, v); err != nil {
		return err
	}
	step("one DENIED: 0.5 ETH to %s at %s, whom the counterparty lists; Address Screening of the wallet, waiting for the answer (Prefer: wait=10)",
		devListed, devSanctioned)
	first, last, _ := strings.Cut(devListed, " ")
	denied, err := d.send(d.us, devCounterparty, "ETH", "Ethereum", "0.5", devOurSender, devCustomer{first, last, devSanctioned})
	if err != nil {
		return err
	}
	if err := d.waitResult(d.us, denied, "DENIED"); err != nil {
		return err
	}
	if err := d.screen(denied); err != nil {
		return err
	}

	// They send (we are BENEFICIARY).
	step("the counterparty sends us %s BTC for %s at %s: our VASP answers Verify User, the counterparty gets VERIFICATION_RESULT",
		devDepositAmount, ada.name(), devDepositAddress)
	in, err := d.send(d.them, devVasp, "BTC", "", devDepositAmount, devTheirSender, ada)
	if err != nil {
		return err
	}
	if err := d.waitCallback(d.them, webhook.TypeVerificationResult, in); err != nil {
		return err
	}
	code, raw, err := d.post(d.us, kytPath, map[string]string{"verificationUuid": in}, nil)
	if err != nil {
		return err
	}
	if code != http.StatusBadRequest {
		return fmt.Errorf("demo: a deposit screened before its tx report answered %d, not 400: %s", code, raw)
	}
	d.say("       screening it with KYT before its tx report answered %d %s", code, raw)
	step("the counterparty reports its transaction %s: TX_REPORT reaches our VASP", devDepositTx)
	if err := d.reportTx(d.them, in, devDepositTx); err != nil {
		return err
	}
	if err := d.waitCallback(d.us, webhook.TypeTxReport, in); err != nil {
		return err
	}
	step("screening the deposit (a received TRANSFER)")
	if id, err = d.assess(in); err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	if steps > 7 {
		if err := d.monitoring(step, sim); err != nil {
			return err
		}
	}
	step("stopping the counterparty's API (as `kill -USR1` does): GET /v1/vasps shows it DOWN, an account check answers ERROR; then starting it again")
	counterparty.pause()
	if err := d.waitHealth("DOWN"); err != nil {
		return err
	}
	if err := d.checkAccount(grace, "ERROR"); err != nil {
		return err
	}
	if err := counterparty.resume(); err != nil {
		return err
	}
	if err := d.waitHealth("UP"); err != nil {
		return err
	}
	if !us.callbacksHere {
		d.say("done: every callback of the counterparty received; ours went to ENCLAVE_CALLBACK_URL, and our API shows what each told")
		return nil
	}
	d.say("done: every callback of both sides received")
	return nil
}

// waitHealth waits for GET /v1/vasps on our enclave to show the demo counterparty's health as
// want.
func (d demoClient) waitHealth(want string) error {
	var last string
	err := d.until("the demo counterparty "+want+" in GET /v1/vasps", func() bool {
		var r struct {
			Vasps []struct{ VaspID, Health string }
		}
		if !d.get(d.us, "/v1/vasps", &r) {
			return false
		}
		for _, v := range r.Vasps {
			if v.VaspID == devCounterparty {
				last = v.Health
			}
		}
		return last == want
	})
	if err == nil {
		d.say("       GET /v1/vasps: the demo counterparty %s is %s", devCounterparty, want)
	}
	return err
}

// checkAccount asks the counterparty's VASP, through both enclaves, whether it knows c's wallet
// and name, and wants the answer want.
func (d demoClient) checkAccount(c devCustomer, want string) error {
	body := map[string]any{"beneficiaryVaspId": devCounterparty, "symbol": "ETH", "network": "Ethereum",
		"payload": map[string]any{"ivms101": map[string]any{"beneficiary": map[string]any{
			"beneficiaryPersons": []any{devPerson(c.First, c.Last)}, "accountNumber": []string{c.Wallet}}}}}
	var r struct{ AccountVerificationResult, Reason, Message string }
	if err := d.call(d.us, "/v1/verifications/account", body, &r); err != nil {
		return err
	}
	d.say("       account check: %s %s %s", r.AccountVerificationResult, r.Reason, r.Message)
	if r.AccountVerificationResult != want {
		return fmt.Errorf("demo: the account check answered %s, not %s", r.AccountVerificationResult, want)
	}
	return nil
}

// screen asks Address Screening about a verification's beneficiary wallet, waiting for the
// answer in the call, then for its callback.
func (d demoClient) screen(id string) error {
	code, raw, err := d.post(d.us, screeningPath, map[string]string{"verificationUuid": id}, http.Header{"Prefer": {"wait=10"}})
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
	return d.waitTerminal(screeningPath, screened.RequestID)
}

// monitoring tells the story of an alert raised later: a transfer to a private wallet (the
// counterparty answers UNKNOWN), processed without alerts; then Chainalysis identifies the
// wallet as sanctioned, and the monitoring sync brings the new alert in as a
// CHAINALYSIS_KYT_ALERT.
func (d demoClient) monitoring(step func(string, ...any), sim *kytsim.Server) error {
	step("we send 0.2 ETH to the private wallet %s (UNKNOWN to the counterparty), report txHash %s and screen the TRANSFER",
		devLaterSanctioned, devLaterTxHash)
	v, err := d.send(d.us, devCounterparty, "ETH", "Ethereum", "0.2", devOurSender, devCustomer{Wallet: devLaterSanctioned})
	if err != nil {
		return err
	}
	if err := d.waitResult(d.us, v, "UNKNOWN"); err != nil {
		return err
	}
	if err := d.reportTx(d.us, v, devLaterTxHash); err != nil {
		return err
	}
	id, err := d.assess(v)
	if err != nil {
		return err
	}
	if err := d.waitTerminal(kytPath, id); err != nil {
		return err
	}
	if err := d.waitCallback(d.them, webhook.TypeTxReport, v); err != nil {
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
	d.say("       waiting for the CHAINALYSIS_KYT_ALERT of %s…", id)
	return d.until("the CHAINALYSIS_KYT_ALERT of "+id, func() bool { return d.us.backend.alerted(id) })
}

// The two assessment routes the demo waits on.
const (
	kytPath       = "/v1/risk-assessment/chainalysis-kyt"
	screeningPath = "/v1/risk-assessment/chainalysis-address-screening"
)

// until polls done every 100 ms for at most a minute.
func (d demoClient) until(what string, done func() bool) error {
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	for !done() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("demo: no %s within a minute", what)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// get reads path on side's enclave into out; false when it did not answer 200.
func (d demoClient) get(s demoSide, path string, out any) bool {
	req, _ := http.NewRequestWithContext(d.ctx, "GET", s.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) == nil
}

// waitCallback waits for side's callback of type typ about verification id (or, when its
// callbacks go elsewhere, for the verification to show what the callback tells).
func (d demoClient) waitCallback(s demoSide, typ, id string) error {
	d.say("       waiting for %s %s…", s.whose, typ)
	return d.until(s.whose+" "+typ+" of "+id, func() bool {
		if s.callbacksHere {
			return s.backend.got(typ, id)
		}
		var v struct {
			Result string  `json:"result"`
			TxHash *string `json:"txHash"`
		}
		if !d.get(s, "/v1/verifications/"+id, &v) {
			return false
		}
		return (typ == webhook.TypeVerificationResult && v.Result != "PENDING") || (typ == webhook.TypeTxReport && v.TxHash != nil)
	})
}

// waitResult waits for side's VERIFICATION_RESULT of id and checks it is want.
func (d demoClient) waitResult(s demoSide, id, want string) error {
	if err := d.waitCallback(s, webhook.TypeVerificationResult, id); err != nil {
		return err
	}
	var v struct{ Result string }
	if !d.get(s, "/v1/verifications/"+id, &v) || v.Result != want {
		return fmt.Errorf("demo: verification %s is %q, not %s", id, v.Result, want)
	}
	return nil
}

// waitTerminal waits for one of our assessments' terminal callback (or, when callbacks go
// elsewhere, for the assessment to be terminal), saying what it waits for.
func (d demoClient) waitTerminal(path, requestID string) error {
	d.say("       requestId %s: waiting for Chainalysis and the callback…", requestID)
	return d.until("terminal state of assessment "+requestID, func() bool {
		if d.us.callbacksHere {
			return d.us.backend.terminal(requestID)
		}
		var r struct { // either assessment: both carry their status here
			RiskAssessment map[string]json.RawMessage `json:"riskAssessment"`
		}
		if !d.get(d.us, path+"/"+requestID, &r) {
			return false
		}
		for _, a := range r.RiskAssessment {
			var s struct{ Status string }
			if json.Unmarshal(a, &s) == nil && (s.Status == webhook.StatusProcessed || s.Status == webhook.StatusError) {
				d.say("       %s is %s", requestID, s.Status)
				return true
			}
		}
		return false
	})
}
