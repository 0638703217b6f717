package exchange

import (
	"context"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/strictjson"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/vaspapi"
	"github.com/travelrule/enclave/internal/verification"
)

// TxInquiry is a tx inquiry (POST /v1/verifications/tx/inquiry and its peer route): the
// beneficiary asks the originator about the transfer of one verification.
type TxInquiry struct {
	VerificationUUID string `json:"verificationUuid" validate:"required,uuid"`
}

// TxStatus is a tx inquiry's answer: {verificationUuid, transactionStatus, txHash?, vout?}.
type TxStatus = vaspapi.TxStatus

// The transaction statuses the enclave answers from what it stores.
const (
	TxPending    = "PENDING"
	TxProcessing = "PROCESSING"
	TxCanceled   = "CANCELED"
)

// InquireTx asks the originator VASP's enclave about the transfer of an inbound (BENEFICIARY)
// verification and answers what it said, within CheckTimeout. A verification this VASP sent is
// BAD-REQUEST; one whose originator is no longer in the peers file, UNKNOWN-VASP. No answer in
// time (or no connection) is REQUEST-TIMEOUT, an error or an unusable answer
// COUNTERPARTY-ERROR: both 424, for this enclave is fine and the counterparty is not.
func (c *Checks) InquireTx(ctx context.Context, q TxInquiry) (TxStatus, error) {
	if err := validate.Struct(q); err != nil {
		return TxStatus{}, err
	}
	v, err := c.x.verifs.FindWithoutPayload(ctx, q.VerificationUUID)
	if err != nil {
		return TxStatus{}, err
	}
	if v.Role != verification.Beneficiary {
		return TxStatus{}, apperr.Bad("verificationUuid: %s is a verification this VASP sent; only its beneficiary asks the originator about the transfer", v.UUID)
	}
	p, err := c.x.peer("verificationUuid", v.OriginatingVaspID)
	if err != nil {
		return TxStatus{}, err
	}
	st, err := c.askTx(ctx, p, v.UUID)
	outcome := st.TransactionStatus
	if e, ok := apperr.As(err); ok {
		outcome = e.Code
	}
	c.inquiries.WithLabelValues(string(verification.Beneficiary), outcome).Inc()
	return st, err
}

func (c *Checks) askTx(ctx context.Context, p Peer, id string) (TxStatus, error) {
	a, err := c.ask(ctx, p, "/peer/v1/verifications/tx/inquiry", TxInquiry{VerificationUUID: id})
	switch {
	case err != nil && a.Status == 0:
		c.log.Warn("tx inquiry: no answer from the counterparty", "counterparty", p.VaspID, "verificationUuid", id, "err", err.Error())
		return TxStatus{}, apperr.New(apperr.RequestTimeout, "the originator VASP's enclave did not answer: %s", err.Error())
	case err != nil:
		problem := describe(err, a)
		c.log.Warn("tx inquiry: the counterparty failed", "counterparty", p.VaspID, "verificationUuid", id, "status", a.Status, "err", problem)
		return TxStatus{}, apperr.New(apperr.CounterpartyError, "the originator VASP's enclave %s", problem)
	}
	st, err := readTxStatus(a.Body, id)
	if err != nil {
		c.log.Warn("tx inquiry: the counterparty answered something unusable", "counterparty", p.VaspID, "verificationUuid", id,
			"status", a.Status, "err", apperr.Message(err))
		return TxStatus{}, apperr.New(apperr.CounterpartyError, "the originator VASP's enclave answered %d with an answer the enclave cannot use: %s",
			a.Status, apperr.Message(err))
	}
	return st, nil
}

// readTxStatus reads a counterparty enclave's answer to a tx inquiry about verification id.
func readTxStatus(body []byte, id string) (TxStatus, error) {
	var st TxStatus
	if err := strictjson.Unmarshal(body, &st); err != nil {
		return st, badAnswer(err, "the body is not a JSON object {verificationUuid, transactionStatus, txHash, vout}")
	}
	if err := validate.Struct(st); err != nil {
		return st, err
	}
	if ids.Canonical(st.VerificationUUID) != id {
		return st, apperr.Bad("verificationUuid: the answer is about %s", validate.Quote(st.VerificationUUID))
	}
	st.VerificationUUID = id
	return st, nil
}

// AnswerTxInquiry answers the beneficiary enclave sender about the transfer of a verification
// this VASP sent it: from this VASP's Transaction Status API, within ENCLAVE_VASP_API_TIMEOUT;
// without one, or when it fails, from what the enclave stores (Stored). A verification the
// sender is not the beneficiary of is NOT-FOUND-VERIFICATION, as if it did not exist.
func (c *Checks) AnswerTxInquiry(ctx context.Context, sender string, q TxInquiry) (TxStatus, error) {
	if err := validate.Struct(q); err != nil {
		return TxStatus{}, err
	}
	v, err := c.x.verifs.FindWithoutPayload(ctx, q.VerificationUUID)
	if err != nil {
		return TxStatus{}, err
	}
	if v.Role != verification.Originator || v.BeneficiaryVaspID != sender {
		return TxStatus{}, verification.NotFound(v.UUID)
	}
	st := Stored(v)
	if c.vasp.ReportsTxStatus() {
		vctx, cancel := c.withVASPBound(ctx)
		asked, err := c.vasp.TxStatus(vctx, v.UUID)
		cancel()
		if err == nil {
			st = asked
		} else {
			c.log.Warn("Transaction Status API failed; answering from the stored tx report", "verificationUuid", v.UUID, "err", err.Error())
		}
	}
	c.inquiries.WithLabelValues(string(verification.Originator), st.TransactionStatus).Inc()
	return st, nil
}

// Stored is the status of v's transfer as the originator's enclave knows it without its VASP:
// PROCESSING with the txHash once the tx report is in (it was broadcast, and the enclave does
// not follow the chain); else CANCELED once either side sent an error report; else PENDING.
func Stored(v verification.Verification) TxStatus {
	switch {
	case v.TxReported():
		return TxStatus{VerificationUUID: v.UUID, TransactionStatus: TxProcessing, TxHash: v.TxHash, Vout: v.Vout}
	case v.ErrorReport != nil:
		return TxStatus{VerificationUUID: v.UUID, TransactionStatus: TxCanceled}
	}
	return TxStatus{VerificationUUID: v.UUID, TransactionStatus: TxPending}
}
