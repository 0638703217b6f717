// Package exchange is the travel rule between two enclaves (DESIGN.md §12): the originator sends
// its verification to the beneficiary's enclave, which asks its VASP (Verify User) and sends the
// answer back; the tx report and error reports travel the same way; the originator stops waiting
// after ENCLAVE_VERIFICATION_TIMEOUT. It owns the peer_messages table.
//
// Every change and the work it causes — the message to the counterparty, the callback to our
// VASP, the question to our VASP — is stored in one transaction with the verification
// (verification.Service.Change), so a crash loses none of them and a replay repeats none.
// Messages to counterparties run on a lane of their own (Queue): a dead counterparty never
// holds back screening or callbacks. Which result follows which message is decided in one
// place, verification.Transition.
package exchange

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/retry"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/vaspapi"
	"github.com/travelrule/enclave/internal/verification"
)

// Queue is the River queue of the exchange's jobs, apart from assessments and deliveries.
const Queue = "exchange"

// Defaults.
const (
	// DefaultTimeout is how long an originator waits for the result (ENCLAVE_VERIFICATION_TIMEOUT).
	DefaultTimeout = 15 * time.Minute
	// DefaultPeerTimeout bounds one request to a counterparty enclave.
	DefaultPeerTimeout = 10 * time.Second
	// DefaultReportMaxAge is how long a tx or error report is retried before it is FAILED (it can
	// then be redelivered through the API).
	DefaultReportMaxAge = 24 * time.Hour
	// DefaultWorkers is the messages to counterparties in flight (ENCLAVE_PEER_WORKERS).
	DefaultWorkers = 100
)

// Peer is a counterparty of the peers file.
type Peer struct {
	VaspID, Name, URL string
	// Secret signs messages both ways, "whsec_<base64>". Never logged.
	Secret string
	// TRP: the counterparty speaks TRP (DESIGN.md §15), and URL is its inquiry endpoint.
	TRP bool
}

// Config is the exchange's configuration.
type Config struct {
	// VaspID is this VASP's id, sent as X-Vasp-Id.
	VaspID string
	// Peers finds a counterparty of the peers file by its VASP id.
	Peers func(vaspID string) (Peer, bool)
	// Timeout: see DefaultTimeout.
	Timeout time.Duration
	// Retry is the wait between tries of a message or a Verify User call: from about 1 s,
	// doubling, capped at 1 min, with jitter.
	Retry retry.Backoff
	// PeerTimeout: see DefaultPeerTimeout.
	PeerTimeout time.Duration
	// ReportMaxAge: see DefaultReportMaxAge.
	ReportMaxAge time.Duration
	HTTPClient   *http.Client
	// VaspName names us in the IVMS101 originatingVASP of a TRP inquiry (ENCLAVE_VASP_NAME).
	VaspName string
	// TRPURL is the base URL of our TRP listener (ENCLAVE_TRP_URL): our callbacks are under
	// it. Empty: this enclave speaks no TRP.
	TRPURL string
	// TRPInsecure: TRP runs without TLS, on loopback only (ENCLAVE_TRP_INSECURE).
	TRPInsecure bool
	// TRPClient sends TRP requests: it presents our certificate and trusts the
	// counterparties' CA (ENCLAVE_TRP_TLS_*). Nil: a plain client (ENCLAVE_TRP_INSECURE).
	TRPClient *http.Client
	// Hook, when set, is called at the exchange's steps, before the step is recorded: "sent"
	// (a counterparty acknowledged message id) and "asked" (the VASP answered Verify User about
	// verification id). A test seam for a crash at that point.
	Hook func(ctx context.Context, step, id string)
}

// Service runs the exchange. It holds no state that correctness depends on: any number of
// replicas may run it.
type Service struct {
	api, work *sqlx.DB
	verifs    *verification.Service
	callbacks *callback.Service
	vasp      *vaspapi.Client
	peers     *signedhttp.Client
	trpc      *signedhttp.Client
	client    *river.Client[*sql.Tx]
	cfg       Config
	log       *slog.Logger
	sent      *prometheus.CounterVec
	results   *prometheus.CounterVec
}

// NewService returns a Service answering the API from api and working jobs on work. vasp may
// be nil (no Verify User API: inbound verifications wait for the result route). Attach must
// be called with the River client before use.
func NewService(api, work *sqlx.DB, verifs *verification.Service, callbacks *callback.Service, vasp *vaspapi.Client,
	cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Retry.Base <= 0 {
		cfg.Retry = retry.Backoff{Base: time.Second, Cap: time.Minute}
	}
	if cfg.PeerTimeout <= 0 {
		cfg.PeerTimeout = DefaultPeerTimeout
	}
	if cfg.ReportMaxAge <= 0 {
		cfg.ReportMaxAge = DefaultReportMaxAge
	}
	s := &Service{api: api, work: work, verifs: verifs, callbacks: callbacks, vasp: vasp, cfg: cfg, log: log,
		peers: signedhttp.New(cfg.HTTPClient, cfg.PeerTimeout),
		trpc:  signedhttp.New(cfg.TRPClient, cfg.PeerTimeout),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_peer_messages_total",
			Help: "Attempts to send a message to a counterparty enclave, by kind and outcome (delivered, retry, failed)."}, []string{"kind", "outcome"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "enclave_verification_results_total",
			Help: "Verifications that reached a result, by our role, result and reason."}, []string{"role", "result", "reason"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.sent, s.results} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	callbacks.AttachWith(s.resultBeneficiary)
	return s, nil
}

func (s *Service) hook(ctx context.Context, step, id string) {
	if s.cfg.Hook != nil {
		s.cfg.Hook(ctx, step, id)
	}
}

// Attach gives the service the River client it inserts jobs with.
func (s *Service) Attach(c *river.Client[*sql.Tx]) { s.client = c }

// AddWorkers registers the exchange's workers.
func (s *Service) AddWorkers(w *river.Workers) {
	river.AddWorker(w, &SendWorker{S: s})
	river.AddWorker(w, &TimeoutWorker{S: s})
	river.AddWorker(w, &VerifyUserWorker{S: s})
}

// JobTimeout bounds the longest of the exchange's jobs: one request and the database work
// around it.
func (s *Service) JobTimeout() time.Duration {
	return max(s.cfg.PeerTimeout, s.vasp.Timeout()) + 5*time.Second
}

// peer returns the counterparty vaspID as one we can send to, or UNKNOWN-VASP naming field.
func (s *Service) peer(field, vaspID string) (Peer, error) {
	p, ok := s.cfg.Peers(vaspID)
	switch {
	case !ok:
		return p, apperr.New(apperr.UnknownVASP, "%s: %s is not a counterparty of ENCLAVE_PEERS_FILE", field, validate.Quote(vaspID))
	case p.URL == "":
		return p, apperr.New(apperr.UnknownVASP, "%s: counterparty %s has no url in ENCLAVE_PEERS_FILE, so it cannot be sent to", field, validate.Quote(vaspID))
	}
	return p, nil
}

// Create records a verification this VASP starts and, with it, the message that carries it to
// the beneficiary VASP — its enclave, or over TRP when the draft names a
// beneficiaryTravelAddress or the counterparty speaks TRP — and the end of the wait for its
// result. A beneficiaryVaspId the peers file does not name (without a Travel Address) is
// UNKNOWN-VASP.
func (s *Service) Create(ctx context.Context, d verification.Draft) (verification.Verification, error) {
	endpoint, err := s.trpRoute(&d)
	if err != nil {
		return verification.Verification{}, err
	}
	id := strings.TrimSpace(d.BeneficiaryVaspID)
	if endpoint == "" && id != "" && id != s.cfg.VaspID {
		if _, err := s.peer("beneficiaryVaspId", id); err != nil {
			return verification.Verification{}, err
		}
	}
	return s.verifs.CreateOutgoing(ctx, d, s.cfg.Timeout, func(ctx context.Context, tx *sqlx.Tx, v verification.Verification) error {
		if endpoint != "" {
			if err := checkTRPAsset(v); err != nil {
				return err
			}
			if err := startTransfer(ctx, tx, v, endpoint, "", uuid.NewString()); err != nil {
				return err
			}
		}
		if err := s.enqueue(ctx, tx, v.UUID, v.BeneficiaryVaspID, KindVerification); err != nil {
			return err
		}
		_, err := s.client.InsertTx(ctx, tx.Tx, TimeoutArgs{VerificationUUID: v.UUID}, &river.InsertOpts{Queue: Queue, ScheduledAt: *v.DeadlineAt})
		return err
	})
}

// Receive records a verification a counterparty enclave sent (we are BENEFICIARY) and, with it,
// the question to our VASP: its Verify User API, or, without one, a VERIFICATION_REQUEST
// callback asking it to answer through POST /v1/verifications/{uuid}/result.
func (s *Service) Receive(ctx context.Context, sender string, d verification.Inbound, body []byte) error {
	_, err := s.verifs.ReceiveIncoming(ctx, sender, d, body, s.askVASP)
	return err
}

// askVASP enqueues, in tx, the question about inbound verification v to our VASP.
func (s *Service) askVASP(ctx context.Context, tx *sqlx.Tx, v verification.Verification) error {
	if s.vasp.VerifiesUsers() {
		_, err := s.client.InsertTx(ctx, tx.Tx, VerifyUserArgs{VerificationUUID: v.UUID}, nil)
		return err
	}
	v.Payload = nil
	return s.callbacks.Enqueue(ctx, tx, callback.New{Type: TypeVerificationRequest, VerificationUUID: v.UUID,
		Payload: payload(TypeVerificationRequest, v.View())})
}

// ResultMessage is the beneficiary enclave's answer (POST /peer/v1/verifications/result), and
// the VASP's late answer (POST /v1/verifications/{uuid}/result, whose uuid is in the path).
type ResultMessage struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
	vaspapi.Answer
}

// check checks m's shape, then the rules its tags cannot say.
func (m ResultMessage) check() (string, verification.Outcome, error) {
	if err := validate.Struct(m); err != nil {
		return "", verification.Outcome{}, err
	}
	o := m.Outcome()
	return ids.Canonical(m.VerificationUUID), o, verification.CheckAnswer(o, false)
}

// ReceiveResult records the result the beneficiary enclave sender sent for a verification we
// started, and enqueues VERIFICATION_RESULT with it. The sender must be the verification's
// beneficiary VASP (anyone else: NOT-FOUND-VERIFICATION, as if it did not exist); a returned
// beneficiary accountNumber other than the one asked about makes the result ERROR /
// BENEFICIARY-ACCOUNT-NOT-MATCHED, and the counterparty is told by an error report. A result
// that contradicts a final one is CONFLICT; the same again is a harmless success.
func (s *Service) ReceiveResult(ctx context.Context, sender string, m ResultMessage) error {
	id, o, err := m.check()
	if err != nil {
		return err
	}
	_, err = s.verifs.Change(ctx, id, func(tx *sqlx.Tx, v verification.Verification) error {
		if v.Role != verification.Originator || v.BeneficiaryVaspID != sender {
			return verification.NotFound(v.UUID)
		}
		returned := ""
		if len(o.Beneficiary) > 0 {
			returned = verification.BeneficiaryAccount(o.Beneficiary)
		}
		return s.resultArrived(ctx, tx, v, o, returned)
	})
	return err
}

// resultArrived records, in tx, the beneficiary VASP's answer o to a verification we started
// — whichever transport brought it — with its VERIFICATION_RESULT. returned, when not empty,
// is the beneficiary account the answer names: another than the wallet asked about makes the
// result ERROR / BENEFICIARY-ACCOUNT-NOT-MATCHED, and the counterparty is told by an error
// report. An answer that contradicts a final result is CONFLICT.
func (s *Service) resultArrived(ctx context.Context, tx *sqlx.Tx, v verification.Verification, o verification.Outcome, returned string) error {
	mismatch := returned != "" && !sameAccount(returned, v)
	if mismatch {
		o = verification.Outcome{Result: verification.Error, Reason: verification.ReasonAccountNotMatched,
			Message: "the beneficiary VASP returned another accountNumber than the one asked about"}
	}
	next, changed, err := verification.Transition(v.Outcome, verification.Answered, o)
	if err != nil || !changed {
		return err
	}
	if v, err = s.settle(ctx, tx, v, next); err != nil {
		return err
	}
	if mismatch {
		return s.reportError(ctx, tx, v, verification.ErrorReport{Result: string(verification.Error),
			Reason: verification.ReasonAccountNotMatched, Message: o.Message, From: verification.FromSelf})
	}
	return nil
}

// Answer records this VASP's answer to an inbound verification that waited for it (no Verify
// User API, or it answered PENDING), and enqueues the message that carries it to the
// originator. A verification we started is BAD-REQUEST; a different answer to one already
// answered is CONFLICT.
func (s *Service) Answer(ctx context.Context, m ResultMessage) error {
	id, o, err := m.check()
	if err != nil {
		return err
	}
	_, err = s.verifs.Change(ctx, id, func(tx *sqlx.Tx, v verification.Verification) error {
		if v.Role != verification.Beneficiary {
			return apperr.Bad("verificationUuid: %s is a verification this VASP sent; only the beneficiary VASP answers it", v.UUID)
		}
		return s.answer(ctx, tx, v, o)
	})
	return err
}

// answer moves an inbound verification to the VASP's answer o and enqueues the result message.
func (s *Service) answer(ctx context.Context, tx *sqlx.Tx, v verification.Verification, o verification.Outcome) error {
	next, changed, err := verification.Transition(v.Outcome, verification.Answered, o)
	if err != nil || !changed {
		return err
	}
	if _, err := s.settle(ctx, tx, v, next); err != nil {
		return err
	}
	return s.enqueue(ctx, tx, v.UUID, v.OriginatingVaspID, KindResult)
}

// settle stores a verification's result and, on the originator's side, its one
// VERIFICATION_RESULT callback.
func (s *Service) settle(ctx context.Context, tx *sqlx.Tx, v verification.Verification, o verification.Outcome) (verification.Verification, error) {
	v, err := s.verifs.SetOutcome(ctx, tx, v, o)
	if err != nil {
		return v, err
	}
	s.results.WithLabelValues(string(v.Role), string(o.Result), reasonLabel(o.Reason)).Inc()
	if v.Role != verification.Originator {
		return v, nil
	}
	return v, s.callbacks.Enqueue(ctx, tx, callback.New{Type: TypeVerificationResult, VerificationUUID: v.UUID,
		AttachResult: len(o.Beneficiary) > 0, Payload: payload(TypeVerificationResult, resultData(v))})
}

// ReportTx records this VASP's Transaction Result Report and enqueues the message that carries
// it to the beneficiary VASP's enclave.
func (s *Service) ReportTx(ctx context.Context, r verification.TxReport) error {
	_, err := s.verifs.ReportTx(ctx, r, func(ctx context.Context, tx *sqlx.Tx, v verification.Verification) error {
		return s.enqueue(ctx, tx, v.UUID, v.BeneficiaryVaspID, KindTxReport)
	})
	return err
}

// ReceiveTx records the originator's tx report sent by its enclave and enqueues TX_REPORT for
// our VASP, once.
func (s *Service) ReceiveTx(ctx context.Context, sender string, r verification.TxReport) error {
	_, err := s.verifs.ReceiveTxReport(ctx, sender, r, func(ctx context.Context, tx *sqlx.Tx, v verification.Verification) error {
		return s.callbacks.Enqueue(ctx, tx, callback.New{Type: TypeTxReport, VerificationUUID: v.UUID,
			Payload: payload(TypeTxReport, txReportData{VerificationUUID: v.UUID, TxHash: v.TxHash, Vout: v.Vout})})
	})
	return err
}

// ErrorMessage is an error report (POST /v1/verifications/error and its peer route).
type ErrorMessage struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
	verification.ErrorReport
}

// ReportError records this VASP's error report on a verification, ends the wait for a result
// if there is one, and enqueues the message that carries it to the counterparty. One error
// report a verification: the same again is a harmless success, another is CONFLICT.
func (s *Service) ReportError(ctx context.Context, m ErrorMessage) error {
	if err := validate.Struct(m); err != nil {
		return err
	}
	id := ids.Canonical(m.VerificationUUID)
	_, err := s.verifs.Change(ctx, id, func(tx *sqlx.Tx, v verification.Verification) error {
		if _, isTRP, err := findTransfer(ctx, tx, v.UUID); err != nil {
			return err
		} else if !isTRP {
			if _, err := s.peer("verificationUuid", v.CounterpartyVaspID()); err != nil {
				return err
			}
		}
		r := m.ErrorReport
		r.From = verification.FromSelf
		if done, err := sameReport(v, r); done || err != nil {
			return err
		}
		v, err := s.cancelled(ctx, tx, v, r)
		if err != nil {
			return err
		}
		return s.reportError(ctx, tx, v, r)
	})
	return err
}

// cancelled ends the wait for v's result, if it still waits, with the result error report r
// gives it.
func (s *Service) cancelled(ctx context.Context, tx *sqlx.Tx, v verification.Verification, r verification.ErrorReport) (verification.Verification, error) {
	next, changed, _ := verification.Transition(v.Outcome, verification.Cancelled, verification.Outcome{
		Result: verification.Result(r.Result), Reason: r.Reason, Message: r.Message})
	if !changed {
		return v, nil
	}
	return s.settle(ctx, tx, v, next)
}

// reportError stores our error report on v and enqueues its message to the counterparty.
func (s *Service) reportError(ctx context.Context, tx *sqlx.Tx, v verification.Verification, r verification.ErrorReport) error {
	if _, err := s.verifs.SetErrorReport(ctx, tx, v, r); err != nil {
		return err
	}
	return s.enqueue(ctx, tx, v.UUID, v.CounterpartyVaspID(), KindErrorReport)
}

// ReceiveError records the error report the counterparty sender sent, ends the wait for a
// result if there is one, and enqueues ERROR_REPORT for our VASP, once.
func (s *Service) ReceiveError(ctx context.Context, sender string, m ErrorMessage) error {
	if err := validate.Struct(m); err != nil {
		return err
	}
	id := ids.Canonical(m.VerificationUUID)
	_, err := s.verifs.Change(ctx, id, func(tx *sqlx.Tx, v verification.Verification) error {
		if v.CounterpartyVaspID() != sender {
			return verification.NotFound(v.UUID)
		}
		r := m.ErrorReport
		r.From = verification.FromCounterparty
		if done, err := sameReport(v, r); done || err != nil {
			return err
		}
		if _, err := s.verifs.SetErrorReport(ctx, tx, v, r); err != nil {
			return err
		}
		v, err := s.cancelled(ctx, tx, v, r)
		if err != nil {
			return err
		}
		return s.callbacks.Enqueue(ctx, tx, callback.New{Type: TypeErrorReport, VerificationUUID: v.UUID,
			Payload: payload(TypeErrorReport, errorData{VerificationUUID: v.UUID, Result: r.Result, Reason: r.Reason, Message: r.Message})})
	})
	return err
}

// sameReport says whether v already has error report r (done: nothing to do), or another one
// (CONFLICT).
func sameReport(v verification.Verification, r verification.ErrorReport) (bool, error) {
	e := v.ErrorReport
	switch {
	case e == nil:
		return false, nil
	case e.Result == r.Result && e.Reason == r.Reason && e.Message == r.Message && e.From == r.From:
		return true, nil
	}
	return false, apperr.New(apperr.Conflict, "verificationUuid: %s already has an error report (%s, %s) from %s", v.UUID, e.Result, e.Reason,
		strings.ToLower(e.From))
}

// reasonLabel keeps a metric's reason label to VerifyVASP's codes: a reason is free text a
// counterparty chooses, and every distinct label value is a time series.
func reasonLabel(r string) string {
	switch {
	case r == verification.ReasonOK, r == verification.ReasonRequestTimeout, r == verification.ReasonAccountNotMatched,
		slices.Contains(verification.DeniedReasons, r):
		return r
	}
	return "OTHER"
}

// resultBeneficiary opens the beneficiary IVMS101 of a verification's result, for the
// VERIFICATION_RESULT callback being delivered.
func (s *Service) resultBeneficiary(ctx context.Context, id string) (json.RawMessage, error) {
	v, err := s.verifs.Find(ctx, id)
	if err != nil {
		return nil, err
	}
	return v.Outcome.Beneficiary, nil
}
