package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/travelrule/enclave/webhook"
)

// devBackend stands in for one VASP's backend: it checks the signature and bearer token of each
// callback its enclave sends and prints it for a person to read, and it answers its enclave's
// Verify User API from its customer book. dev runs one for each of its two enclaves.
type devBackend struct {
	srv           *httptest.Server
	side          string // "us" or "counterparty", printed with each line
	secret, token string
	book          devBook
	out           io.Writer // shared by both backends: mu is taken with it

	mu      *sync.Mutex
	done    map[string]bool // requestIds whose terminal callback arrived
	alerts  map[string]bool // requestIds a CHAINALYSIS_KYT_ALERT arrived for
	arrived map[string]bool // callbackType + " " + verificationUuid of the exchange's callbacks
	asked   int             // Verify User questions answered
}

// newDevBackend starts a backend printing to out under mu (one lock for both backends, so their
// blocks do not interleave).
func newDevBackend(side, secret, token string, book devBook, out io.Writer, mu *sync.Mutex) *devBackend {
	b := &devBackend{side: side, secret: secret, token: token, book: book, out: out, mu: mu,
		done: map[string]bool{}, alerts: map[string]bool{}, arrived: map[string]bool{}}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	return b
}

func (b *devBackend) URL() string           { return b.srv.URL + "/callbacks" }
func (b *devBackend) VerifyUserURL() string { return b.srv.URL + "/verify-user" }

// VerifyAccountURL is the backend's Verify Account API (ENCLAVE_VERIFY_ACCOUNT_URL).
func (b *devBackend) VerifyAccountURL() string { return b.srv.URL + "/verify-account" }
func (b *devBackend) Close()                   { b.srv.Close() }

func (b *devBackend) terminal(requestID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.done[requestID]
}

func (b *devBackend) alerted(requestID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.alerts[requestID]
}

// got says whether a callback of type typ about verification id arrived.
func (b *devBackend) got(typ, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.arrived[typ+" "+id]
}

// header starts the printed block of one request. Must hold b.mu.
func (b *devBackend) header(what, id string) {
	fmt.Fprintf(b.out, "\n── %s [%s] %s (webhook-id %s, signature verified) ──\n", time.Now().Format("15:04:05.000"), b.side, what, id)
}

func (b *devBackend) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	err := webhook.Verify(b.secret, req.Header, body)
	if err == nil && req.Header.Get("Authorization") != "Bearer "+b.token {
		err = fmt.Errorf("wrong bearer token")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		fmt.Fprintf(b.out, "\n%s ✗ [%s] %s refused: %v\n", time.Now().Format("15:04:05.000"), b.side, req.URL.Path, err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	switch req.URL.Path {
	case "/verify-user":
		b.verifyUser(w, req, body)
		return
	case "/verify-account":
		b.verifyAccount(w, req, body)
		return
	}
	cb, err := webhook.ParseBody(b.secret, req.Header, body)
	if err == nil {
		switch cb.CallbackType {
		case webhook.TypeAddressScreeningResult:
			err = b.printScreening(cb)
		case webhook.TypeVerificationResult, webhook.TypeTxReport, webhook.TypeErrorReport, webhook.TypeVerificationRequest:
			err = b.printExchange(cb)
		default:
			err = b.printKYT(cb)
		}
	}
	if err != nil {
		fmt.Fprintf(b.out, "\n%s ✗ [%s] callback %s: %v\n", time.Now().Format("15:04:05.000"), b.side, cb.CallbackType, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verifyUser answers the enclave's Verify User question from the book. Must hold b.mu.
func (b *devBackend) verifyUser(w http.ResponseWriter, req *http.Request, body []byte) {
	q, err := decodeQuestion(body)
	if err != nil {
		http.Error(w, `{"code":"BAD-REQUEST"}`, http.StatusBadRequest)
		return
	}
	a, why := b.book.answer(q)
	b.asked++
	b.header("Verify User asked", req.Header.Get(webhook.HeaderID))
	wallet := ""
	if n := q.IVMS101.Beneficiary.AccountNumber; len(n) > 0 {
		wallet = n[0]
	}
	fmt.Fprintf(b.out, "  verification %s: %s %s to %s\n", q.VerificationUUID, q.AssetInfo.Amount, q.AssetInfo.Symbol, wallet)
	fmt.Fprintf(b.out, "  the book: %s → %s %s\n", why, a.Result, a.Reason)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(a) //nolint:errcheck // the enclave retries what it does not get
}

// verifyAccount answers the enclave's Verify Account question (does this VASP know the wallet,
// and the name when one is given?) from the book. Must hold b.mu.
func (b *devBackend) verifyAccount(w http.ResponseWriter, req *http.Request, body []byte) {
	var q struct {
		Symbol  string `json:"symbol"`
		IVMS101 struct {
			Beneficiary struct {
				Persons       []ivmsPerson `json:"beneficiaryPersons"`
				AccountNumber []string     `json:"accountNumber"`
			} `json:"beneficiary"`
		} `json:"ivms101"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		http.Error(w, `{"code":"BAD-REQUEST"}`, http.StatusBadRequest)
		return
	}
	a, why := b.book.account(q.IVMS101.Beneficiary.AccountNumber, q.IVMS101.Beneficiary.Persons)
	b.header("Verify Account asked", req.Header.Get(webhook.HeaderID))
	fmt.Fprintf(b.out, "  %s wallet %s\n", q.Symbol, strings.Join(q.IVMS101.Beneficiary.AccountNumber, ", "))
	fmt.Fprintf(b.out, "  the book: %s → %s %s\n", why, a.Result, a.Reason)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"accountVerificationResult": a.Result, "reason": a.Reason, "message": a.Message}) //nolint:errcheck
}

// printExchange prints a callback of the verification exchange. Must hold b.mu.
func (b *devBackend) printExchange(cb webhook.Callback) error {
	var id string
	switch cb.CallbackType {
	case webhook.TypeVerificationResult:
		d, err := cb.VerificationResult()
		if err != nil {
			return err
		}
		id = d.VerificationUUID
		b.header("callback "+cb.CallbackType, cb.ID)
		msg := ""
		if d.Message != nil && *d.Message != "" {
			msg = ": " + *d.Message
		}
		fmt.Fprintf(b.out, "  verification %s: %s %s%s\n", id, d.Result, deref(d.Reason), msg)
		if d.IVMS101 != nil {
			var ben struct {
				Persons       []ivmsPerson `json:"beneficiaryPersons"`
				AccountNumber []string     `json:"accountNumber"`
			}
			json.Unmarshal(d.IVMS101.Beneficiary, &ben) //nolint:errcheck // printed as far as it reads
			fmt.Fprintf(b.out, "  the beneficiary VASP returned: %s, %s\n", strings.Join(names(ben.Persons), ", "), strings.Join(ben.AccountNumber, ", "))
		}
	case webhook.TypeTxReport:
		d, err := cb.TxReport()
		if err != nil {
			return err
		}
		id = d.VerificationUUID
		b.header("callback "+cb.CallbackType, cb.ID)
		fmt.Fprintf(b.out, "  verification %s: the originator sent it, txHash %s\n", id, d.TxHash)
	case webhook.TypeErrorReport:
		d, err := cb.ErrorReport()
		if err != nil {
			return err
		}
		id = d.VerificationUUID
		b.header("callback "+cb.CallbackType, cb.ID)
		fmt.Fprintf(b.out, "  verification %s: the counterparty reports %s %s %s\n", id, d.Result, d.Reason, d.Message)
	case webhook.TypeVerificationRequest:
		d, err := cb.VerificationRequest()
		if err != nil {
			return err
		}
		id = d.VerificationUUID
		b.header("callback "+cb.CallbackType, cb.ID)
		fmt.Fprintf(b.out, "  verification %s to %s waits for this VASP's answer (POST /v1/verifications/%s/result)\n", id, d.BeneficiaryAddress, id)
	}
	b.arrived[cb.CallbackType+" "+id] = true
	return nil
}

// printKYT prints a CHAINALYSIS_KYT_RESULT or CHAINALYSIS_KYT_ALERT. Must hold b.mu.
func (b *devBackend) printKYT(cb webhook.Callback) error {
	d, err := cb.KYTResult()
	if err != nil {
		return err
	}
	k := d.RiskAssessment.ChainalysisKYT
	b.header("callback "+cb.CallbackType, cb.ID)
	fmt.Fprintf(b.out, "  verification %s  request %s\n", d.VerificationUUID, k.RequestID)
	fmt.Fprintf(b.out, "  %s %s: %s %s on %s, address %s\n", k.APIType, k.Direction, k.Amount, k.Asset, k.Network, k.OutputAddress)
	if k.TransferRef != nil {
		fmt.Fprintf(b.out, "  transferRef %s\n", *k.TransferRef)
	}
	switch {
	case k.Error != nil:
		fmt.Fprintf(b.out, "  status %s: %s %s\n", k.Status, k.Error.Code, k.Error.Message)
	case k.AlertCount != nil:
		fmt.Fprintf(b.out, "  status %s, %d alert(s); the transfer is worth $%s (usdPrice)\n", k.Status, *k.AlertCount, deref(k.USDPrice))
	default:
		fmt.Fprintf(b.out, "  status %s\n", k.Status)
	}
	if cb.CallbackType == webhook.TypeKYTAlert {
		fmt.Fprintf(b.out, "  raised later by Chainalysis's monitoring; only the new alert(s):\n")
		b.alerts[k.RequestID] = true
	}
	for _, a := range d.RiskAssessment.ChainalysisKYTAlerts {
		fmt.Fprintf(b.out, "    %-6s %s: %s ($%s, %s, %s)\n", a.AlertLevel, deref(a.EntityCategory), deref(a.ServiceName), a.AlertAmount, a.ExposureType, a.Source)
	}
	if k.Final() {
		b.done[k.RequestID] = true
	}
	return nil
}

// printScreening prints a CHAINALYSIS_ADDRESS_SCREENING_RESULT. Must hold b.mu.
func (b *devBackend) printScreening(cb webhook.Callback) error {
	d, err := cb.AddressScreeningResult()
	if err != nil {
		return err
	}
	a := d.RiskAssessment.ChainalysisAddressScreening
	b.header("callback "+cb.CallbackType, cb.ID)
	fmt.Fprintf(b.out, "  verification %s  request %s\n", d.VerificationUUID, a.RequestID)
	fmt.Fprintf(b.out, "  address %s (counterparty %s)\n", a.Address, a.CounterpartyVaspID)
	if a.Error != nil {
		fmt.Fprintf(b.out, "  status %s: %s %s\n", a.Status, a.Error.Code, a.Error.Message)
	} else {
		fmt.Fprintf(b.out, "  status %s, risk %s: %s\n  cluster %s\n", a.Status, deref(a.Risk), deref(a.RiskReason), a.Cluster)
	}
	if a.Final() {
		b.done[a.RequestID] = true
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
