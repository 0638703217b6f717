package exchange

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/signedhttp"
	"github.com/travelrule/enclave/internal/traddr"
	"github.com/travelrule/enclave/internal/trp"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
)

// TRP is the exchange's second transport (DESIGN.md §15): OpenVASP's Travel Rule Protocol v3
// with a counterparty that is not an enclave. The verification rows, the messages of
// peer_messages with their lane, order, retries and give-up, the timeout and the callbacks are
// the enclave exchange's own; only what a message looks like on the wire, and where it goes,
// differs. Each transition goes through the same functions as the enclave transport's
// (settle, resultArrived, answer, ReceiveTx, ReceiveError).
//
//	kind          we are        TRP request
//	VERIFICATION  originator    POST inquiry to the endpoint; its answer may be the result
//	RESULT        beneficiary   POST {"approved"} or {"rejected"} to the inquiry's callback
//	TX_REPORT     originator    POST {"txid"} to the approved callback
//	ERROR_REPORT  originator    POST {"canceled"} to the approved callback
//	ERROR_REPORT  beneficiary   POST {"rejected"} to the inquiry's callback

// transfer is a verification's trp_transfers row.
type transfer struct {
	VerificationUUID string         `db:"verification_uuid"`
	Endpoint         sql.NullString `db:"endpoint"`
	Token            string         `db:"token"`
	Callback         sql.NullString `db:"counterparty_callback"`
	RequestID        string         `db:"request_identifier"`
}

const transferColumns = `verification_uuid, endpoint, token, counterparty_callback, request_identifier`

// findTransfer returns the TRP transfer of verification id, if it goes over TRP.
func findTransfer(ctx context.Context, q sqlx.QueryerContext, id string) (transfer, bool, error) {
	var t transfer
	err := sqlx.GetContext(ctx, q, &t, `SELECT `+transferColumns+` FROM trp_transfers WHERE verification_uuid = $1`, id)
	if errors.Is(err, sql.ErrNoRows) {
		return t, false, nil
	}
	if err != nil {
		return t, false, fmt.Errorf("load TRP transfer of %s: %w", id, err)
	}
	return t, true, nil
}

// startTransfer records, in tx, that verification v goes over TRP: to endpoint (originator)
// or answering to callback (beneficiary), under request-identifier requestID.
func startTransfer(ctx context.Context, tx *sqlx.Tx, v verification.Verification, endpoint, callback, requestID string) error {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO trp_transfers (verification_uuid, endpoint, token, counterparty_callback, request_identifier)
		VALUES ($1, $2, $3, $4, $5)`, v.UUID, nullable(endpoint), base64.RawURLEncoding.EncodeToString(b), nullable(callback), requestID); err != nil {
		return fmt.Errorf("insert TRP transfer of %s: %w", v.UUID, err)
	}
	return nil
}

func nullable(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// callbackURL is our per-verification callback route on the TRP listener.
func (s *Service) callbackURL(t transfer) string {
	return strings.TrimRight(s.cfg.TRPURL, "/") + "/callbacks/" + t.Token
}

// trpRoute decides, for a verification being created, whether it goes over TRP and to which
// endpoint: a beneficiaryTravelAddress, or a counterparty of the peers file that speaks TRP.
// It fills d's beneficiaryVaspId from the Travel Address's host when the draft names none.
func (s *Service) trpRoute(d *verification.Draft) (string, error) {
	ta := strings.TrimSpace(d.BeneficiaryTravelAddress)
	id := strings.TrimSpace(d.BeneficiaryVaspID)
	if ta == "" {
		if id == "" || id == s.cfg.VaspID {
			return "", nil
		}
		p, err := s.peer("beneficiaryVaspId", id)
		if err != nil || !p.TRP {
			return "", err
		}
		if s.cfg.TRPURL == "" {
			return "", apperr.New(apperr.UnknownVASP, "beneficiaryVaspId: %s speaks TRP, and this enclave's TRP listener is not configured (ENCLAVE_TRP_URL)", validate.Quote(id))
		}
		return p.URL, nil
	}
	if s.cfg.TRPURL == "" {
		return "", apperr.Bad("beneficiaryTravelAddress: this enclave does not speak TRP (ENCLAVE_TRP_LISTEN_ADDR and ENCLAVE_TRP_URL are not set)")
	}
	endpoint, err := traddr.Decode(ta)
	if err != nil {
		return "", apperr.Bad("beneficiaryTravelAddress: %s", err.Error())
	}
	if s.cfg.TRPInsecure && !traddr.LoopbackURL(endpoint) {
		return "", apperr.Bad("beneficiaryTravelAddress: names a host that is not loopback, and TRP runs without TLS here (ENCLAVE_TRP_INSECURE)")
	}
	if id == "" {
		u, _ := url.Parse(endpoint)
		if !validate.VASPID(u.Host) {
			return "", apperr.Bad("beneficiaryTravelAddress: its host is too long to name the beneficiary VASP; name it with beneficiaryVaspId")
		}
		d.BeneficiaryVaspID = u.Host
	}
	return endpoint, nil
}

// checkTRPAsset refuses, before anything is stored, a verification whose asset a TRP
// counterparty cannot be told: TRP names an asset by its SLIP-0044 coin type.
func checkTRPAsset(v verification.Verification) error {
	if _, ok := trp.CoinType(v.Asset); !ok {
		return apperr.Bad("assetInfo.symbol: %s has no SLIP-0044 coin type, which is how a TRP counterparty is told the asset", v.Asset)
	}
	return nil
}

// postTRP makes one attempt to send message m about v over TRP. refused is set when the
// message cannot be sent at all (nowhere to send it): it then fails for good.
func (s *Service) postTRP(ctx context.Context, m Record, v verification.Verification, t transfer) (a signedhttp.Answer, err, refused error) {
	to, body, err := s.renderTRP(m.Kind, v, t)
	if err != nil {
		return a, err, err
	}
	if to == "" {
		err = errors.New("the TRP counterparty gave no callback to send this to (the transfer was not approved)")
		return a, err, err
	}
	a, err = s.trpc.Post(ctx, signedhttp.Request{URL: to, Header: trp.Header(t.RequestID), Body: body})
	return a, err, nil
}

// renderTRP returns where message kind about v goes and its TRP body.
func (s *Service) renderTRP(kind string, v verification.Verification, t transfer) (string, []byte, error) {
	var body any
	to := t.Callback.String
	switch {
	case kind == KindVerification:
		ivms, err := s.inquiryIVMS101(v)
		if err != nil {
			return "", nil, err
		}
		n, ok := trp.CoinType(v.Asset)
		if !ok {
			return "", nil, fmt.Errorf("asset %s has no SLIP-0044 coin type", v.Asset)
		}
		coin := trp.Coin(n)
		to, body = t.Endpoint.String, struct {
			Asset    trp.Asset       `json:"asset"`
			Amount   json.RawMessage `json:"amount"`
			Callback string          `json:"callback"`
			IVMS101  json.RawMessage `json:"IVMS101"`
		}{trp.Asset{SLIP0044: &coin}, trp.Amount(v.Amount), s.callbackURL(t), ivms}
	case kind == KindResult && v.Outcome.Result == verification.Verified:
		body = trp.Resolution{Approved: &trp.Approval{Address: v.BeneficiaryAddress, Callback: s.callbackURL(t)}}
	case kind == KindResult:
		body = trp.Resolution{Rejected: rejection(v.Outcome.Result, v.Outcome.Reason, v.Outcome.Message)}
	case kind == KindTxReport:
		body = trp.Confirmation{TxID: v.TxHash}
	case kind == KindErrorReport && v.ErrorReport == nil:
		return "", nil, errors.New("the verification has no error report")
	case kind == KindErrorReport && v.Role == verification.Originator:
		body = trp.Confirmation{Canceled: rejection(verification.Result(v.ErrorReport.Result), v.ErrorReport.Reason, v.ErrorReport.Message)}
	case kind == KindErrorReport:
		body = trp.Resolution{Rejected: rejection(verification.Result(v.ErrorReport.Result), v.ErrorReport.Reason, v.ErrorReport.Message)}
	default:
		return "", nil, fmt.Errorf("unknown message kind %q", kind)
	}
	b, err := json.Marshal(body)
	return to, b, err
}

// rejection is the human-readable reason TRP carries for a result or an error report.
func rejection(r verification.Result, reason, message string) string {
	s := string(r) + " " + reason
	if message != "" {
		s += ": " + message
	}
	return s
}

// inquiryIVMS101 is the IVMS101 object of v's payload, as the VASP sent it, with
// originatingVASP and beneficiaryVASP named when the VASP did not name them.
func (s *Service) inquiryIVMS101(v verification.Verification) (json.RawMessage, error) {
	var p struct {
		IVMS101 map[string]json.RawMessage `json:"ivms101"`
	}
	if err := json.Unmarshal(v.Payload, &p); err != nil || p.IVMS101 == nil {
		return nil, errors.New("the verification's payload has no ivms101 object")
	}
	if _, ok := p.IVMS101["originatingVASP"]; !ok {
		p.IVMS101["originatingVASP"] = legalPerson(s.cfg.VaspName, s.cfg.VaspID)
	}
	if _, ok := p.IVMS101["beneficiaryVASP"]; !ok {
		name := ""
		if peer, ok := s.cfg.Peers(v.BeneficiaryVaspID); ok {
			name = peer.Name
		}
		p.IVMS101["beneficiaryVASP"] = legalPerson(name, v.BeneficiaryVaspID)
	}
	return json.Marshal(p.IVMS101)
}

// legalPerson is an IVMS101 {"originatingVASP"} or {"beneficiaryVASP"} object naming a VASP
// (not a natural person: no personal data).
func legalPerson(name, id string) json.RawMessage {
	if name == "" {
		name = id
	}
	b, _ := json.Marshal(map[string]any{"originatingVASP": map[string]any{"legalPerson": map[string]any{"name": map[string]any{
		"nameIdentifier": []any{map[string]string{"legalPersonName": name, "legalPersonNameIdentifierType": "LEGL"}}}}}})
	var inner map[string]json.RawMessage
	json.Unmarshal(b, &inner) //nolint:errcheck // just marshalled
	return inner["originatingVASP"]
}

// inquiryAnswered records the answer to our inquiry with its delivery, in one transaction:
// {"version"} (the decision comes later, to our callback) delivers it only; approved or
// rejected is the result as well. An answer that is none of those fails the message for good.
func (s *Service) inquiryAnswered(ctx context.Context, m Record, v verification.Verification, attempts int, a signedhttp.Answer) error {
	res, err := trp.ReadResolution(a.Body)
	if err != nil {
		return s.fail(ctx, m, v, attempts, a, fmt.Sprintf("answered %d with an answer TRP does not allow: %s", a.Status, apperr.Message(err)), true)
	}
	_, err = s.verifs.Change(ctx, m.VerificationUUID, func(tx *sqlx.Tx, v verification.Verification) error {
		if err := delivered(ctx, tx, m.ID, attempts, a.Status); err != nil {
			return err
		}
		err := s.resolved(ctx, tx, v, res)
		if e, ok := apperr.As(err); ok && e.Code == apperr.Conflict {
			return nil // already ended (an error report, the timeout): delivered all the same, the answer changes nothing
		}
		return err
	})
	if err == nil {
		s.sent.WithLabelValues(m.Kind, "delivered").Inc()
	}
	return err
}

// delivered marks message id DELIVERED in tx.
func delivered(ctx context.Context, tx sqlx.ExecerContext, id string, attempts, status int) error {
	if _, err := tx.ExecContext(ctx, `UPDATE peer_messages SET status = 'DELIVERED', attempts = $2, last_status_code = $3,
		last_error = NULL, next_attempt_at = NULL, delivered_at = now() WHERE id = $1 AND status = 'PENDING'`, id, attempts, status); err != nil {
		return fmt.Errorf("record delivery of message %s: %w", id, err)
	}
	return nil
}

// resolved applies a TRP beneficiary's resolution to a verification we started, in tx:
// approved is VERIFIED (its address must be the wallet we asked about, else ERROR /
// BENEFICIARY-ACCOUNT-NOT-MATCHED), rejected is DENIED with the reason as its message, and the
// version alone says the decision comes later.
func (s *Service) resolved(ctx context.Context, tx *sqlx.Tx, v verification.Verification, res trp.Resolution) error {
	switch {
	case res.Approved != nil:
		if _, err := tx.ExecContext(ctx, `UPDATE trp_transfers SET counterparty_callback = $2 WHERE verification_uuid = $1`,
			v.UUID, res.Approved.Callback); err != nil {
			return fmt.Errorf("store the approved callback of %s: %w", v.UUID, err)
		}
		return s.resultArrived(ctx, tx, v, verification.Outcome{Result: verification.Verified, Reason: verification.ReasonOK}, res.Approved.Address)
	case res.Rejected != "":
		return s.resultArrived(ctx, tx, v, verification.Outcome{Result: verification.Denied, Reason: verification.ReasonUndefinedError,
			Message: trp.Clip("rejected by the TRP counterparty: " + res.Rejected)}, "")
	}
	return nil
}

// ReceiveInquiry records an inquiry a TRP originator sent to one of our Travel Addresses
// (we are BENEFICIARY) for wallet, and, with it, the question to our VASP — as Receive does for
// an enclave's verification. The inquiry names the transfer by its request-identifier: the same
// inquiry again is a harmless success, another with the same identifier is BAD-REQUEST. The
// originating VASP is known by its callback's host. Problems are BAD-REQUEST naming the field.
func (s *Service) ReceiveInquiry(ctx context.Context, wallet, requestID string, body []byte) error {
	in, err := trp.ReadInquiry(body)
	if err != nil {
		return err
	}
	var symbol string
	switch {
	case in.Asset.SLIP0044 != nil:
		var ok bool
		if symbol, ok = trp.Symbol(int(*in.Asset.SLIP0044)); !ok {
			return apperr.Bad("asset.slip0044: coin type %d is not an asset this enclave knows", *in.Asset.SLIP0044)
		}
	default:
		return apperr.Bad("asset.dti: this enclave reads assets by slip0044 only; got a dti")
	}
	payload, err := inboundPayload(in.IVMS101, wallet)
	if err != nil {
		return err
	}
	u, _ := url.Parse(in.Callback)
	sender := u.Host
	if !validate.VASPID(sender) {
		return apperr.Bad("callback: its host is too long to name the originating VASP")
	}
	d := verification.Inbound{
		VerificationUUID:  uuid.NewSHA1(trpNamespace, []byte(sender+"\x00"+requestID)).String(),
		OriginatingVaspID: sender,
		Draft: verification.Draft{BeneficiaryVaspID: s.cfg.VaspID,
			AssetInfo: verification.AssetInfo{Symbol: symbol, Amount: in.Amount}},
	}
	if err := json.Unmarshal(payload, &d.Payload); err != nil {
		return apperr.Bad("IVMS101: %s", err.Error())
	}
	_, err = s.verifs.ReceiveIncoming(ctx, sender, d, body, func(ctx context.Context, tx *sqlx.Tx, v verification.Verification) error {
		if err := startTransfer(ctx, tx, v, "", in.Callback, requestID); err != nil {
			return err
		}
		return s.askVASP(ctx, tx, v)
	})
	if e, ok := apperr.As(err); ok && strings.HasPrefix(e.Message, "verificationUuid:") {
		return apperr.Bad("%s: %s was sent before with another inquiry", trp.HeaderRequestIdentifier, validate.Quote(requestID))
	}
	return inquiryFields(err)
}

// trpFields renames the fields of a verification, as the checks of internal/verification name
// them, to the TRP inquiry's: the counterparty learns which of its own fields is at fault.
var trpFields = strings.NewReplacer("assetInfo.amount", "amount", "assetInfo.symbol", "asset", "assetInfo.network", "asset",
	"payload.ivms101", "IVMS101", "payload", "IVMS101")

func inquiryFields(err error) error {
	e, ok := apperr.As(err)
	if !ok {
		return err
	}
	out := &apperr.Error{Code: e.Code, Message: trpFields.Replace(e.Message)}
	for _, p := range e.Problems {
		out.Problems = append(out.Problems, apperr.Problem{Field: trpFields.Replace(p.Field), Rule: p.Rule})
	}
	return out
}

// trpNamespace names the verifications of inbound TRP inquiries (UUIDv5 of the originator's
// host and request-identifier): a retried inquiry finds its verification.
var trpNamespace = uuid.MustParse("6f0c5a52-3f5e-4c8e-9a51-2b1d7c1e8f11")

// inboundPayload is the verification payload {"ivms101": ...} of an inquiry's IVMS101 for
// wallet (the Travel Address's): the beneficiary's accountNumber is the wallet when the
// originator did not write one, and must be it when it did.
func inboundPayload(ivms json.RawMessage, wallet string) (json.RawMessage, error) {
	if wallet != "" && (len(wallet) > 256 || !utf8.ValidString(wallet) || strings.ContainsFunc(wallet, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		return nil, apperr.Bad("wallet: the Travel Address's path does not name a wallet address")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(ivms, &top); err != nil {
		return nil, apperr.Bad("IVMS101: want an object")
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(top["beneficiary"], &b); err != nil || b == nil {
		return nil, apperr.Bad("IVMS101.beneficiary: want an object")
	}
	var accounts []string
	if raw, ok := b["accountNumber"]; ok {
		if err := json.Unmarshal(raw, &accounts); err != nil {
			return nil, apperr.Bad("IVMS101.beneficiary.accountNumber: want an array of strings")
		}
	}
	switch {
	case len(accounts) == 0 && wallet == "":
		return nil, apperr.Bad("IVMS101.beneficiary.accountNumber: required (the Travel Address names no wallet)")
	case len(accounts) == 0:
		b["accountNumber"], _ = json.Marshal([]string{wallet})
		top["beneficiary"], _ = json.Marshal(b)
	case wallet != "" && strings.TrimSpace(accounts[0]) != wallet:
		return nil, apperr.Bad("IVMS101.beneficiary.accountNumber: names another wallet than the Travel Address the inquiry was sent to")
	}
	return json.Marshal(map[string]any{"ivms101": top})
}

// ReceiveTRPCallback takes what a TRP counterparty POSTed to our callback route of one
// verification (token names it, and knowing it is the authority to answer): the beneficiary's
// late decision on our inquiry ({"approved"} or {"rejected"}), or the originator's
// confirmation of an inquiry we approved ({"txid"} → TX_REPORT, {"canceled"} →
// ERROR_REPORT). An unknown token is NOT-FOUND; a decision that contradicts a final result is
// CONFLICT.
func (s *Service) ReceiveTRPCallback(ctx context.Context, token string, body []byte) error {
	var t transfer
	err := s.api.GetContext(ctx, &t, `SELECT `+transferColumns+` FROM trp_transfers WHERE token = $1`, token)
	if errors.Is(err, sql.ErrNoRows) || token == "" {
		return apperr.New(apperr.NotFound, "no TRP transfer has this callback")
	}
	if err != nil {
		return fmt.Errorf("find TRP transfer: %w", err)
	}
	v, err := s.verifs.FindWithoutPayload(ctx, t.VerificationUUID)
	if err != nil {
		return err
	}
	if v.Role == verification.Originator {
		res, err := trp.ReadResolution(body)
		if err != nil || res.Version != "" {
			return err
		}
		_, err = s.verifs.Change(ctx, v.UUID, func(tx *sqlx.Tx, v verification.Verification) error { return s.resolved(ctx, tx, v, res) })
		return err
	}
	c, err := trp.ReadConfirmation(body)
	if err != nil {
		return err
	}
	if c.TxID != "" {
		err := s.ReceiveTx(ctx, v.OriginatingVaspID, verification.TxReport{VerificationUUID: v.UUID, TxHash: c.TxID})
		if e, ok := apperr.As(err); ok && strings.HasPrefix(e.Message, "txHash:") {
			return apperr.Bad("txid: %s", strings.TrimPrefix(e.Message, "txHash: "))
		}
		return err
	}
	return s.ReceiveError(ctx, v.OriginatingVaspID, ErrorMessage{VerificationUUID: v.UUID, ErrorReport: verification.ErrorReport{
		Result: string(verification.Error), Reason: verification.ReasonUndefinedError, Message: trp.Clip("canceled by the TRP originator: " + c.Canceled)}})
}

// sameAccount reports whether the account a beneficiary returned is the wallet v asked about.
func sameAccount(returned string, v verification.Verification) bool {
	return network.SameAddress(strings.TrimSpace(returned), v.BeneficiaryAddress)
}

// TRPAddress is the Travel Address of one of our wallets: where a TRP originator sends its
// inquiry about it (POST <ENCLAVE_TRP_URL>/transfers/<wallet>?t=i).
func TRPAddress(trpURL, wallet string) (string, error) {
	wallet = strings.TrimSpace(wallet)
	if wallet == "" || len(wallet) > 256 || strings.ContainsAny(wallet, "/?#% ") {
		return "", errors.New("want one wallet address, without spaces, '/', '?', '#' or '%'")
	}
	return traddr.Encode(strings.TrimRight(trpURL, "/") + "/transfers/" + wallet)
}
