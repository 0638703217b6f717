// Package enclavetest starts a whole enclave for tests: a fresh migrated PostgreSQL database,
// the enclave wired exactly as serve wires it (internal/app) and served as serve serves it
// (internal/httpserver) with River working, kytsim over real HTTP as Chainalysis, and a real
// HTTP receiver that verifies every callback's signature.
package enclavetest

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/app"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/dbtest"
	"github.com/travelrule/enclave/internal/httpserver"
	"github.com/travelrule/enclave/internal/kytsim"
	"github.com/travelrule/enclave/internal/openapitest"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/webhook"
)

// Identities used by every test.
const (
	OurVasp   = "15952089931162059995"
	TheirVasp = "20000000000000000001"
	APIKey    = "enclave-test-api-key"
	KYTKey    = "kyt-test-key"
	Token     = "callback-test-token"
)

// Secrets of the callback receiver and of the counterparty enclave.
var (
	CallbackSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("callback-secret-32-bytes-long-00"))
	PeerSecret     = "whsec_" + base64.StdEncoding.EncodeToString([]byte("peer-secret-32-bytes-long-000000"))
)

// Options adjust the enclave a test starts.
type Options struct {
	// Sim configures kytsim; its APIKey defaults to KYTKey.
	Sim kytsim.Options
	// Tuning shrinks schedules; by default callbacks retry after 0, 20ms, 20ms.
	Tuning app.Tuning
	// Config edits the configuration before the enclave is built.
	Config func(*config.Config)
	// DSN reuses a database instead of creating one.
	DSN string
	// APIOnly starts no workers: another enclave on the same database works the jobs, as a
	// second replica would.
	APIOnly bool
	// JSONLogs logs as serve does (JSON) rather than as text.
	JSONLogs bool
	// VerifyUser points ENCLAVE_VERIFY_USER_URL at the receiver's Verify User API.
	VerifyUser bool
	// VerifyAccount and TxStatus point ENCLAVE_VERIFY_ACCOUNT_URL and ENCLAVE_TX_STATUS_URL at
	// the receiver's Verify Account and Transaction Status APIs.
	VerifyAccount, TxStatus bool
	// Server, when set, is the unstarted HTTP server the enclave serves on (StartPair makes them
	// first, so each enclave's peers file can name the other's URL).
	Server *httptest.Server
	// TRP serves the TRP listener on a loopback port, over plain HTTP (ENCLAVE_TRP_INSECURE);
	// TRPMutualTLS serves it with TRPTLS's certificates instead.
	TRP, TRPMutualTLS bool
	// TRPServer, when set, is the unstarted server of the TRP listener (made first so that a
	// counterparty's peers file can name it).
	TRPServer *httptest.Server
}

// Enclave is a running enclave.
type Enclave struct {
	T  testing.TB
	DB *sqlx.DB // the API's pool
	// Pipeline is the workers' pool (ENCLAVE_PIPELINE_CONNECTIONS).
	Pipeline *sqlx.DB
	DSN      string
	Config   config.Config
	Sim      *kytsim.Server
	Receiver *Receiver
	App      *app.App
	URL      string
	Client   *openapitest.Client
	Logs     *SyncBuffer
	// TRPURL is the TRP listener's URL (ENCLAVE_TRP_URL) when Options.TRP or TRPMutualTLS.
	TRPURL string
}

// Start starts an enclave and stops it when the test ends.
func Start(t testing.TB, o Options) *Enclave {
	t.Helper()
	e := &Enclave{T: t, Logs: &SyncBuffer{}}
	e.DSN = o.DSN
	if e.DSN == "" {
		e.DSN = dbtest.URL(t)
	}
	if o.Sim.APIKey == "" {
		o.Sim.APIKey = KYTKey
	}
	e.Sim = kytsim.NewServer(o.Sim)
	t.Cleanup(e.Sim.Close)
	e.Receiver = NewReceiver(CallbackSecret)
	t.Cleanup(e.Receiver.Close)

	// Alone, the enclave's counterparty is an enclave that acknowledges every message (StartPair
	// gives it a real one).
	ack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) //nolint:errcheck // only acknowledged
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"result":true}`) //nolint:errcheck // the enclave retries what it does not get
	}))
	t.Cleanup(ack.Close)
	e.Config = config.Config{
		DatabaseURL: e.DSN, VaspID: OurVasp, APIKeys: []string{APIKey}, DataKeyset: Keyset(t),
		Peers:     []config.Peer{{VaspID: TheirVasp, Name: "Their VASP", URL: ack.URL, Secret: PeerSecret}},
		KYTAPIURL: e.Sim.URL + "/api/kyt", KYTAPIKey: KYTKey, RiskAPIURL: e.Sim.URL + "/api/risk", RiskAPIKey: KYTKey,
		CallbackURL: e.Receiver.URL(), CallbackToken: Token, CallbackSecret: CallbackSecret,
		KYTMaxAge: time.Hour, KYTPollMaxInterval: 200 * time.Millisecond, Workers: 50, PipelineConnections: 8, ShutdownTimeout: 5 * time.Second,
	}
	if o.VerifyUser {
		e.Config.VerifyUserURL = e.Receiver.VerifyUserURL()
	}
	if o.VerifyAccount {
		e.Config.VerifyAccountURL = e.Receiver.srv.URL + pathVerifyAccount
	}
	if o.TxStatus {
		e.Config.TxStatusURL = e.Receiver.srv.URL + pathTxStatus
	}
	var trpSrv *httptest.Server
	if o.TRP || o.TRPMutualTLS {
		trpSrv = o.TRPServer
		if trpSrv == nil {
			trpSrv = trpServer()
		}
		e.Config.TRPListenAddr = trpSrv.Listener.Addr().String()
		// localhost, not 127.0.0.1: TRISA's Travel Address codec cannot read an IP address
		// with a port.
		local := "localhost:" + strings.TrimPrefix(e.Config.TRPListenAddr, "127.0.0.1:")
		e.Config.TRPURL = "http://" + local
		e.Config.TRPInsecure = true
		if o.TRPMutualTLS {
			c := TRPTLS(t)
			e.Config.TRPURL = "https://" + local
			e.Config.TRPInsecure, e.Config.TRPTLSCert, e.Config.TRPTLSKey, e.Config.TRPTLSCA = false, c.Cert, c.Key, c.CA
		}
		e.TRPURL = e.Config.TRPURL
	}
	if o.Config != nil {
		o.Config(&e.Config)
	}
	pools, err := app.Open(context.Background(), e.DSN, e.Config.PipelineConnections) // as serve opens them
	require.NoError(t, err)
	t.Cleanup(func() { pools.Close() })
	e.DB, e.Pipeline = pools.API, pools.Pipeline
	if o.Tuning.CallbackSchedule == nil {
		o.Tuning.CallbackSchedule = []time.Duration{0, 20 * time.Millisecond, 20 * time.Millisecond}
	}
	if o.Tuning.KYT.Register.Base == 0 {
		o.Tuning.KYT.Register.Base, o.Tuning.KYT.Register.Cap = 20*time.Millisecond, 200*time.Millisecond
	}
	if o.Tuning.KYT.Poll.Base == 0 {
		o.Tuning.KYT.Poll.Base = 20 * time.Millisecond
	}
	if o.Tuning.Screening.Retry.Base == 0 {
		o.Tuning.Screening.Retry.Base, o.Tuning.Screening.Retry.Cap = 20*time.Millisecond, 200*time.Millisecond
	}
	if o.Tuning.Screening.Poll.Base == 0 {
		o.Tuning.Screening.Poll.Base, o.Tuning.Screening.Poll.Cap = 20*time.Millisecond, 200*time.Millisecond
	}
	if o.Tuning.Exchange.Retry.Base == 0 {
		o.Tuning.Exchange.Retry.Base, o.Tuning.Exchange.Retry.Cap = 20*time.Millisecond, 200*time.Millisecond
	}
	if o.Tuning.CallbackTimeout == 0 {
		// Long enough that a receiver starved of CPU on a loaded machine is not taken for one
		// that hung (a retry would deliver the callback twice, which tests count); a test of
		// the timeout sets its own.
		o.Tuning.CallbackTimeout = 5 * time.Second
	}
	if o.Tuning.PollEvery == 0 {
		o.Tuning.PollEvery = 100 * time.Millisecond
	}
	var h slog.Handler = slog.NewTextHandler(e.Logs, &slog.HandlerOptions{Level: slog.LevelInfo})
	if o.JSONLogs {
		h = slog.NewJSONHandler(e.Logs, nil)
	}
	log := slog.New(h)
	a, err := app.New(e.Config, log, pools, o.Tuning)
	require.NoError(t, err)
	e.App = a
	t.Cleanup(a.Close)
	srv := o.Server
	if srv == nil {
		srv = httptest.NewUnstartedServer(nil)
	}
	// Served as serve serves it: its timeouts and its bounds on connections.
	srv.Config = httpserver.New(a.Handler, log, e.Config)
	srv.Listener, err = httpserver.Limit(srv.Listener, e.Config, log, a.Metrics)
	require.NoError(t, err)
	srv.Start()
	t.Cleanup(srv.Close)
	e.URL = srv.URL
	e.Client = &openapitest.Client{T: t, Base: srv.URL, Bearer: APIKey}
	if trpSrv != nil {
		trpSrv.Config = httpserver.New(a.TRPHandler, log, e.Config)
		if a.TRPTLS != nil {
			trpSrv.Listener = tls.NewListener(trpSrv.Listener, a.TRPTLS)
		}
		trpSrv.Start()
		t.Cleanup(trpSrv.Close)
	}
	if !o.APIOnly {
		e.StartWorkers()
	}
	return e
}

// StartPair starts two enclaves that are each other's counterparty over real HTTP: ours
// (OurVasp) and theirs (TheirVasp), each with its own database, kytsim, receiver (its VASP's
// backend) and peers file naming the other with PeerSecret. edit, when set, adjusts each
// one's options (which is 0 for ours, 1 for theirs).
func StartPair(t testing.TB, edit func(which int, o *Options)) (ours, theirs *Enclave) {
	t.Helper()
	Slow(t, "two enclaves")
	srvs := [2]*httptest.Server{httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)}
	ids := [2]string{OurVasp, TheirVasp}
	names := [2]string{"Our VASP", "Their VASP"}
	var out [2]*Enclave
	for i := range 2 {
		o := Options{Server: srvs[i]}
		if edit != nil {
			edit(i, &o)
		}
		user := o.Config
		other := 1 - i
		o.Config = func(c *config.Config) {
			c.VaspID = ids[i]
			c.Peers = []config.Peer{{VaspID: ids[other], Name: names[other], URL: "http://" + srvs[other].Listener.Addr().String(), Secret: PeerSecret}}
			if user != nil {
				user(c)
			}
		}
		out[i] = Start(t, o)
	}
	return out[0], out[1]
}

// Slow leaves a test out of `go test -short`, the inner loop: tests of two enclaves, of a
// killed process, of a stopped database or of a browser. CI runs them all.
func Slow(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + ": a slow test, left out by -short")
	}
}

// StartWorkers starts River; it is stopped when the test ends.
func (e *Enclave) StartWorkers() {
	e.T.Helper()
	require.NoError(e.T, e.App.Start(context.Background()))
	e.T.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.App.StopAndCancel(ctx) //nolint:errcheck
	})
}

// keyset is the data keyset of every enclave a test binary starts.
var keyset = sync.OnceValues(seal.New)

// Keyset returns the test binary's data keyset (ENCLAVE_DATA_KEYSET).
func Keyset(t testing.TB) string {
	ks, err := keyset()
	require.NoError(t, err)
	return ks
}

// VerificationBody is a valid POST /v1/verifications body. On an EVM network the originator
// has an address too; elsewhere it is left out (it is optional).
func VerificationBody(symbol, network, amount, beneficiaryAddress string) map[string]any {
	asset := map[string]any{"symbol": symbol, "amount": amount}
	if network != "" {
		asset["network"] = network
	}
	ivms := map[string]any{"beneficiary": map[string]any{"accountNumber": []string{beneficiaryAddress}}}
	if strings.HasPrefix(beneficiaryAddress, "0x") {
		ivms["originator"] = map[string]any{"accountNumber": []string{"0x3d21a92285bf17cbdde5f77531b8b58ac400288a"}}
	}
	return map[string]any{"beneficiaryVaspId": TheirVasp, "assetInfo": asset, "payload": map[string]any{"ivms101": ivms}}
}

// TxHash is a well-formed transaction hash, the same for the same seed.
func TxHash(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return "0x" + hex.EncodeToString(h[:])
}

func mustJSON(t testing.TB, v any) []byte {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// CreateOutgoing creates an ORIGINATOR verification and returns its uuid.
func (e *Enclave) CreateOutgoing(symbol, network, amount, beneficiaryAddress string) string {
	e.T.Helper()
	return Create(e.T, e, mustJSON(e.T, VerificationBody(symbol, network, amount, beneficiaryAddress)))
}

// Create POSTs body to e's /v1/verifications, requires a 200 and returns the verification's
// uuid; t is the (sub)test the failure belongs to.
func Create(t testing.TB, e *Enclave, body []byte) string {
	t.Helper()
	r := e.Client.Do("POST", "/v1/verifications", body, nil)
	require.Equal(t, 200, r.Status, "%s", r.Body)
	var out struct{ VerificationUUID string }
	require.NoError(t, json.Unmarshal(r.Body, &out))
	return out.VerificationUUID
}

// ReceiveIncoming has the counterparty enclave send us a BENEFICIARY verification.
func (e *Enclave) ReceiveIncoming(id, symbol, network, amount, ourAddress string) {
	e.T.Helper()
	m := VerificationBody(symbol, network, amount, ourAddress)
	m["verificationUuid"], m["originatingVaspId"], m["beneficiaryVaspId"] = id, TheirVasp, OurVasp
	r := e.Peer("/peer/v1/verifications", mustJSON(e.T, m))
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
}

// Peer sends a request signed as the counterparty enclave.
func (e *Enclave) Peer(path string, body []byte) openapitest.Response {
	e.T.Helper()
	h, err := webhook.Sign(PeerSecret, fmt.Sprintf("msg_%d", time.Now().UnixNano()), time.Now(), body)
	require.NoError(e.T, err)
	h.Set("X-Vasp-Id", TheirVasp)
	c := *e.Client
	c.Bearer = ""
	return c.Do("POST", path, body, h)
}

// ReportTx records our Transaction Result Report.
func (e *Enclave) ReportTx(id, hash string) {
	e.T.Helper()
	r := e.Client.Do("POST", "/v1/verifications/tx", mustJSON(e.T, map[string]any{"verificationUuid": id, "txHash": hash}), nil)
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
}

// ReceiveTxReport has the counterparty enclave report its tx on a verification it sent us.
func (e *Enclave) ReceiveTxReport(id, hash string) {
	e.T.Helper()
	r := e.Peer("/peer/v1/verifications/tx", mustJSON(e.T, map[string]any{"verificationUuid": id, "txHash": hash}))
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
}

// Assess asks for a KYT assessment and returns its requestId.
func (e *Enclave) Assess(verificationUUID, network string) string {
	e.T.Helper()
	body := map[string]any{"verificationUuid": verificationUUID}
	if network != "" {
		body["network"] = network
	}
	return e.accept("/v1/risk-assessment/chainalysis-kyt", body)
}

// accept posts body to a risk-assessment route and returns the requestId.
func (e *Enclave) accept(path string, body map[string]any) string {
	e.T.Helper()
	r := e.Client.Do("POST", path, mustJSON(e.T, body), nil)
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
	var out struct{ RequestID string }
	require.NoError(e.T, json.Unmarshal(r.Body, &out))
	return out.RequestID
}

// Get reads an assessment through the API.
func (e *Enclave) Get(requestID string) webhook.KYTResultData {
	e.T.Helper()
	r := e.Client.Do("GET", "/v1/risk-assessment/chainalysis-kyt/"+requestID, nil, nil)
	require.Equal(e.T, 200, r.Status, "%s", r.Body)
	var d webhook.KYTResultData
	require.NoError(e.T, json.Unmarshal(r.Body, &d))
	return d
}

// Received is one callback delivery the receiver got.
type Received struct {
	ID     string
	Header http.Header
	Body   []byte
	Data   webhook.KYTResultData // CHAINALYSIS_KYT_RESULT and CHAINALYSIS_KYT_ALERT
	// Screening is the data of a CHAINALYSIS_ADDRESS_SCREENING_RESULT.
	Screening webhook.ScreeningResultData
	// Verification is the data of a VERIFICATION_RESULT; TxReport of a TX_REPORT; ErrorReport
	// of an ERROR_REPORT; Request of a VERIFICATION_REQUEST.
	Verification webhook.VerificationResultData
	TxReport     webhook.TxReportData
	ErrorReport  webhook.ErrorReportData
	Request      webhook.VerificationRequestData
	Type         string
	Err          error // signature or decoding failure
}

// Receiver is the VASP backend: it verifies and records every callback and answers with
// what Respond says (200 by default).
type Receiver struct {
	srv    *httptest.Server
	secret string

	mu      sync.Mutex
	got     []Received
	respond func(n int, r *http.Request) int
	changed chan struct{}
	// verifyUser answers the Verify User API; asked records what it was asked.
	verifyUser func(req VerifyUserRequest) (int, any)
	asked      []VerifyUserRequest
	// verifyAccount and txStatus answer the Verify Account and Transaction Status APIs;
	// apiAsked records what they were asked, and whether it was signed and authorised.
	verifyAccount func(body []byte) (int, any)
	txStatus      func(body []byte) (int, any)
	apiAsked      []APIRequest
}

// Paths of the VASP's Verify Account and Transaction Status APIs on the receiver.
const (
	pathVerifyAccount = "/verify-account"
	pathTxStatus      = "/tx-status"
)

// APIRequest is one call of the Verify Account or Transaction Status API: its path, its body,
// and a signature or authorisation problem, if any.
type APIRequest struct {
	Path string
	Body []byte
	Err  error
}

// VerifyUserRequest is what the Verify User API was asked, its signature checked.
type VerifyUserRequest struct {
	VerificationUUID        string          `json:"verificationUuid"`
	OriginatingVaspID       string          `json:"originatingVaspId"`
	BeneficiaryVaspID       string          `json:"beneficiaryVaspId"`
	RequiredBeneficiaryInfo string          `json:"requiredBeneficiaryInfo"`
	AssetInfo               json.RawMessage `json:"assetInfo"`
	IVMS101                 json.RawMessage `json:"ivms101"`
	Err                     error           `json:"-"`
}

// VerifyUserURL is where the backend's Verify User API answers.
func (r *Receiver) VerifyUserURL() string { return r.srv.URL + "/verify-user" }

// VerifyUser sets how the Verify User API answers: a status and a JSON body.
func (r *Receiver) VerifyUser(f func(req VerifyUserRequest) (int, any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifyUser = f
}

// Asked returns what the Verify User API was asked so far.
func (r *Receiver) Asked() []VerifyUserRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]VerifyUserRequest(nil), r.asked...)
}

func (r *Receiver) serveVerifyUser(w http.ResponseWriter, req *http.Request) {
	body, err := r.readSigned(req)
	q := VerifyUserRequest{Err: err}
	if q.Err == nil {
		q.Err = json.Unmarshal(body, &q)
	}
	r.mu.Lock()
	r.asked = append(r.asked, q)
	f := r.verifyUser
	r.notify()
	r.mu.Unlock()
	status, answer := http.StatusNotFound, any(map[string]string{"code": "NOT-FOUND"})
	if f != nil {
		status, answer = f(q)
	}
	reply(w, req, status, answer)
}

// readSigned reads a call of the VASP's API and checks it is signed and authorised like a
// callback.
func (r *Receiver) readSigned(req *http.Request) ([]byte, error) {
	body, _ := io.ReadAll(req.Body)
	err := webhook.Verify(r.secret, req.Header, body)
	if err == nil && req.Header.Get("Authorization") != "Bearer "+Token {
		err = fmt.Errorf("authorization header %q", req.Header.Get("Authorization"))
	}
	return body, err
}

// notify wakes Wait; r.mu is held.
func (r *Receiver) notify() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// reply answers status with answer as JSON; status 0 hangs until the caller gives up.
func reply(w http.ResponseWriter, req *http.Request, status int, answer any) {
	if status == 0 {
		<-req.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(answer) //nolint:errcheck // the enclave reads what it gets
}

// VerifyAccount sets how the Verify Account API answers the body it is asked: a status (0:
// hang) and a JSON answer.
func (r *Receiver) VerifyAccount(f func(body []byte) (int, any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verifyAccount = f
}

// TxStatus sets how the Transaction Status API answers the body it is asked.
func (r *Receiver) TxStatus(f func(body []byte) (int, any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txStatus = f
}

// APIAsked returns the calls of the Verify Account and Transaction Status APIs so far.
func (r *Receiver) APIAsked() []APIRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]APIRequest(nil), r.apiAsked...)
}

// serveAPI answers the Verify Account or Transaction Status API with f, or 404 without one.
func (r *Receiver) serveAPI(w http.ResponseWriter, req *http.Request) {
	body, err := r.readSigned(req)
	r.mu.Lock()
	r.apiAsked = append(r.apiAsked, APIRequest{Path: req.URL.Path, Body: body, Err: err})
	f := r.verifyAccount
	if req.URL.Path == pathTxStatus {
		f = r.txStatus
	}
	r.notify()
	r.mu.Unlock()
	status, answer := http.StatusNotFound, any(map[string]string{"code": "NOT-FOUND"})
	if f != nil {
		status, answer = f(body)
	}
	reply(w, req, status, answer)
}

// NewReceiver starts a receiver on a loopback port.
func NewReceiver(secret string) *Receiver {
	r := &Receiver{secret: secret, changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

// URL is where callbacks go.
func (r *Receiver) URL() string { return r.srv.URL + "/callbacks" }

// Close stops the receiver.
func (r *Receiver) Close() { r.srv.Close() }

// Respond sets the status to answer the n-th delivery (1-based) with; 0 means hang until the
// sender gives up.
func (r *Receiver) Respond(f func(n int, req *http.Request) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.respond = f
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/verify-user":
		r.serveVerifyUser(w, req)
		return
	case pathVerifyAccount, pathTxStatus:
		r.serveAPI(w, req)
		return
	}
	body, _ := io.ReadAll(req.Body)
	rec := Received{ID: req.Header.Get(webhook.HeaderID), Header: req.Header.Clone(), Body: body}
	cb, err := webhook.ParseBody(r.secret, req.Header, body)
	if err == nil && req.Header.Get("Authorization") != "Bearer "+Token {
		err = fmt.Errorf("authorization header %q", req.Header.Get("Authorization"))
	}
	if err == nil {
		rec.Type = cb.CallbackType
		switch cb.CallbackType {
		case webhook.TypeAddressScreeningResult:
			rec.Screening, err = cb.AddressScreeningResult()
		case webhook.TypeVerificationResult:
			rec.Verification, err = cb.VerificationResult()
		case webhook.TypeTxReport:
			rec.TxReport, err = cb.TxReport()
		case webhook.TypeErrorReport:
			rec.ErrorReport, err = cb.ErrorReport()
		case webhook.TypeVerificationRequest:
			rec.Request, err = cb.VerificationRequest()
		default:
			rec.Data, err = cb.KYTResult()
		}
	}
	rec.Err = err
	r.mu.Lock()
	r.got = append(r.got, rec)
	n := len(r.got)
	respond := r.respond
	r.notify()
	r.mu.Unlock()
	status := http.StatusOK
	if respond != nil {
		status = respond(n, req)
	}
	if status == 0 {
		<-req.Context().Done()
		return
	}
	w.WriteHeader(status)
}

// All returns every delivery so far.
func (r *Receiver) All() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.got...)
}

// For returns the deliveries about one assessment.
func (r *Receiver) For(requestID string) []Received {
	var out []Received
	for _, g := range r.All() {
		if g.Data.RiskAssessment.ChainalysisKYT.RequestID == requestID {
			out = append(out, g)
		}
	}
	return out
}

// Wait blocks until cond holds for the deliveries so far, failing the test after timeout.
func (r *Receiver) Wait(t testing.TB, timeout time.Duration, what string, cond func([]Received) bool) []Received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got := append([]Received(nil), r.got...)
		ch := r.changed
		r.mu.Unlock()
		if cond(got) {
			return got
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out after %s waiting for %s; %d callbacks received", timeout, what, len(got))
		}
	}
}

// Terminal waits for the terminal callback of the KYT assessment requestID and returns it.
func (r *Receiver) Terminal(t testing.TB, requestID string, timeout time.Duration) Received {
	t.Helper()
	return r.first(t, timeout, "the terminal callback of "+requestID, func(g Received) bool {
		k := g.Data.RiskAssessment.ChainalysisKYT
		return k.RequestID == requestID && k.Final()
	})
}

// ScreeningTerminal waits for the terminal callback of the screening requestID and returns it.
func (r *Receiver) ScreeningTerminal(t testing.TB, requestID string, timeout time.Duration) Received {
	t.Helper()
	return r.first(t, timeout, "the terminal callback of screening "+requestID, func(g Received) bool {
		a := g.Screening.RiskAssessment.ChainalysisAddressScreening
		return a.RequestID == requestID && a.Final()
	})
}

// first waits for the first delivery that is, and returns it once it verifies.
func (r *Receiver) first(t testing.TB, timeout time.Duration, what string, is func(Received) bool) Received {
	t.Helper()
	var found Received
	r.Wait(t, timeout, what, func(got []Received) bool {
		for _, g := range got {
			if is(g) {
				found = g
				return true
			}
		}
		return false
	})
	require.NoError(t, found.Err, "the callback verifies")
	return found
}

// OfType returns the deliveries of one callback type about one verification.
func (r *Receiver) OfType(typ, verificationUUID string) []Received {
	var out []Received
	for _, g := range r.All() {
		if g.Type != typ {
			continue
		}
		switch verificationUUID {
		case g.Verification.VerificationUUID, g.TxReport.VerificationUUID, g.ErrorReport.VerificationUUID, g.Request.VerificationUUID:
			out = append(out, g)
		}
	}
	return out
}

// WaitFor waits for the first callback of type typ about verificationUUID and returns it once
// it verifies.
func (r *Receiver) WaitFor(t testing.TB, typ, verificationUUID string, timeout time.Duration) Received {
	t.Helper()
	r.Wait(t, timeout, typ+" of "+verificationUUID, func([]Received) bool { return len(r.OfType(typ, verificationUUID)) > 0 })
	got := r.OfType(typ, verificationUUID)[0]
	require.NoError(t, got.Err, "the callback verifies")
	return got
}

// Screen asks for an address screening and returns its requestId.
func (e *Enclave) Screen(verificationUUID string) string {
	e.T.Helper()
	return e.accept("/v1/risk-assessment/chainalysis-address-screening", map[string]any{"verificationUuid": verificationUUID})
}

// SyncBuffer collects output written from many goroutines while a test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
