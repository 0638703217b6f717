package verification

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/batch"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/validate"
)

// Service is the verification half of the enclave. It is safe for concurrent use and holds no
// state of its own beyond its dependencies, so any number of replicas may run it.
type Service struct {
	db     *sqlx.DB
	reg    *network.Registry
	vaspID string
	seal   *seal.Sealer
	// plain reads the verifications of concurrent FindWithoutPayload calls (every accepted
	// assessment makes one) in one query.
	plain batch.Group[string, found]
}

// found is one verification FindWithoutPayload read, or why not.
type found struct {
	v   Verification
	err error
}

// NewService returns a Service for the VASP vaspID that seals payloads with s.
func NewService(db *sqlx.DB, reg *network.Registry, vaspID string, s *seal.Sealer) *Service {
	v := &Service{db: db, reg: reg, vaspID: vaspID, seal: s}
	v.plain.Flush = v.findPlain
	return v
}

// NotFound is the VerifyVASP error for an unknown verification.
func NotFound(id string) error {
	return apperr.New(apperr.NotFoundVerification, "Verification(%s) is not found", id)
}

// Then is work done in the transaction that changed a verification, with it: the message to
// the counterparty and the callback it causes are stored with the change or not at all.
type Then func(ctx context.Context, tx *sqlx.Tx, v Verification) error

// CreateOutgoing records a verification this VASP starts: we are ORIGINATOR. It waits for the
// result until timeout has passed (its DeadlineAt); then runs in the same transaction when the
// verification is new (not a replay). It returns BAD-REQUEST naming the field at fault.
func (s *Service) CreateOutgoing(ctx context.Context, d Draft, timeout time.Duration, then Then) (Verification, error) {
	if err := validate.Struct(d); err != nil {
		return Verification{}, err
	}
	v, err := d.resolve(s.reg, Originator)
	if err != nil {
		return v, err
	}
	if v.RequiredBeneficiaryInfo, err = requiredInfo(d.RequiredBeneficiaryInfo); err != nil {
		return v, err
	}
	deadline := time.Now().Add(timeout)
	v.DeadlineAt = &deadline
	v.UUID = uuid.NewString()
	v.OriginatingVaspID = s.vaspID
	if v.BeneficiaryVaspID == s.vaspID {
		return v, apperr.Bad("beneficiaryVaspId: %s is this VASP; a verification needs a counterparty", v.BeneficiaryVaspID)
	}
	if d.IdempotencyKey != "" {
		// The key names the verification: a retry meets the first one in the primary key.
		if v.UUID, err = ids.FromIdempotencyKey("verifications", d.IdempotencyKey); err != nil {
			return v, err
		}
		sum := sha256.Sum256(append([]byte(v.UUID), d.Body...))
		return s.insert(ctx, v, sum[:], true, then)
	}
	sum := sha256.Sum256(append([]byte(v.UUID), v.Payload...))
	return s.insert(ctx, v, sum[:], false, then)
}

// ReceiveIncoming records a verification a counterparty enclave (sender) sent: we are
// BENEFICIARY. body is the request as received; the same body sent again is a harmless
// success, a different one for the same verificationUuid is BAD-REQUEST. then runs in the
// transaction that stores a new one.
func (s *Service) ReceiveIncoming(ctx context.Context, sender string, d Inbound, body []byte, then Then) (Verification, error) {
	if err := validate.Struct(d); err != nil {
		return Verification{}, err
	}
	v, err := d.resolve(s.reg, Beneficiary)
	if err != nil {
		return v, err
	}
	v.UUID, v.OriginatingVaspID = ids.Canonical(d.VerificationUUID), d.OriginatingVaspID
	if v.RequiredBeneficiaryInfo, err = requiredInfo(d.RequiredBeneficiaryInfo); err != nil {
		return v, err
	}
	if v.BeneficiaryVaspID != s.vaspID {
		return v, apperr.Bad("beneficiaryVaspId: %s is not this VASP (%s)", v.BeneficiaryVaspID, s.vaspID)
	}
	if v.OriginatingVaspID != sender {
		return v, apperr.Bad("originatingVaspId: %s does not match the sending VASP %s", v.OriginatingVaspID, sender)
	}
	sum := sha256.Sum256(body)
	return s.insert(ctx, v, sum[:], false, then)
}

// insert stores v and runs then with it in the same transaction; when its uuid exists
// already, the same request (sum) is a harmless success and another is BAD-REQUEST, naming
// Idempotency-Key when keyed.
func (s *Service) insert(ctx context.Context, v Verification, sum []byte, keyed bool, then Then) (Verification, error) {
	r := toRow(v)
	r.RequestSHA256 = sum
	sealed, keyID, err := sealPayload(s.seal, v.UUID, v.Payload)
	if err != nil {
		return v, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return v, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var out row
	err = tx.GetContext(ctx, &out, `
		INSERT INTO verifications (uuid, role, originating_vasp_id, beneficiary_vasp_id, network, asset, amount,
			trade_price, trade_currency, trade_iso_datetime, is_exceeding_threshold, originator_address,
			beneficiary_address, payload_sealed, payload_key_id, request_sha256, required_beneficiary_info, deadline_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
		ON CONFLICT (uuid) DO NOTHING
		RETURNING `+listColumns,
		r.UUID, r.Role, r.OriginatingVaspID, r.BeneficiaryVaspID, r.Network, r.Asset, r.Amount,
		r.TradePrice, r.TradeCurrency, r.TradeISODateTime, r.IsExceedingThreshold, r.OriginatorAddress,
		r.BeneficiaryAddress, sealed, keyID, r.RequestSHA256, r.RequiredInfo, r.DeadlineAt)
	if errors.Is(err, sql.ErrNoRows) {
		// Already there: a replay of the same request is success, anything else a conflict.
		tx.Rollback() //nolint:errcheck // nothing was written
		if err := s.db.GetContext(ctx, &out, `SELECT `+listColumns+` FROM verifications WHERE uuid = $1`, v.UUID); err != nil {
			return v, fmt.Errorf("load verification %s: %w", v.UUID, err)
		}
		switch {
		case keyed:
			if err := ids.Replayed(out.RequestSHA256, sum, out.CreatedAt); err != nil {
				return v, err
			}
		case !bytes.Equal(out.RequestSHA256, sum):
			return v, apperr.Bad("verificationUuid: %s already exists with different content", v.UUID)
		}
		return out.verification(s.seal)
	} else if err != nil {
		return v, fmt.Errorf("insert verification %s: %w", v.UUID, err)
	}
	stored, err := out.verification(s.seal)
	if err != nil {
		return stored, err
	}
	stored.Payload = v.Payload
	if then != nil {
		if err := then(ctx, tx, stored); err != nil {
			return stored, err
		}
	}
	return stored, tx.Commit()
}

// Find returns one verification, or NOT-FOUND-VERIFICATION.
func (s *Service) Find(ctx context.Context, id string) (Verification, error) {
	return s.find(ctx, id, columns)
}

// FindWithoutPayload is Find for those who need the verification's plain columns only (the
// KYT plan: role, network, asset, addresses, tx report): the personal data stays sealed.
func (s *Service) FindWithoutPayload(ctx context.Context, id string) (Verification, error) {
	u, err := ids.UUID("verificationUuid", id)
	if err != nil {
		return Verification{}, err
	}
	f, err := s.plain.Do(ctx, u)
	if err != nil {
		return Verification{}, fmt.Errorf("find verification %s: %w", u, err)
	}
	return f.v, f.err
}

// findPlain reads the plain columns of the verifications of ids in one query.
func (s *Service) findPlain(ctx context.Context, ids []string) ([]found, error) {
	var rows []row
	if err := s.db.SelectContext(ctx, &rows, `SELECT `+listColumns+` FROM verifications WHERE uuid = ANY($1::uuid[])`, ids); err != nil {
		return nil, err
	}
	byID := make(map[string]row, len(rows))
	for _, r := range rows {
		byID[strings.ToLower(r.UUID)] = r
	}
	out := make([]found, len(ids))
	for i, id := range ids {
		r, ok := byID[strings.ToLower(id)]
		if !ok {
			out[i].err = NotFound(id)
			continue
		}
		out[i].v, out[i].err = r.verification(s.seal)
	}
	return out, nil
}

func (s *Service) find(ctx context.Context, id, cols string) (Verification, error) {
	u, err := ids.UUID("verificationUuid", id)
	if err != nil {
		return Verification{}, err
	}
	var r row
	err = s.db.GetContext(ctx, &r, `SELECT `+cols+` FROM verifications WHERE uuid = $1`, u)
	if errors.Is(err, sql.ErrNoRows) {
		return Verification{}, NotFound(u)
	}
	if err != nil {
		return Verification{}, fmt.Errorf("find verification %s: %w", u, err)
	}
	return r.verification(s.seal)
}

// Filter selects verifications for List. Zero values select everything.
type Filter struct {
	Role                                 Role
	Result                               Result
	Symbol                               string
	Network                              string
	TxHash                               string
	OriginatingVaspID, BeneficiaryVaspID string
	From, To                             *time.Time // created_at, inclusive
	Page                                 sqlpage.Request
	// WithPayload includes the IVMS101 payloads, at most MaxLimitWithPayload a page.
	WithPayload bool
}

// Page limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// MaxLimitWithPayload caps a page that carries the IVMS101 payloads: 20 of the largest
	// (MaxPayloadBytes) answer 2.5 MiB.
	MaxLimitWithPayload = 20
)

// verificationList is GET /v1/verifications: newest first, each filter served by an index
// (db/schema/00008_list_indexes.sql).
var verificationList = sqlpage.List{Name: "verifications", From: "verifications", Time: "created_at", ID: "uuid", UUIDKey: true}

// List returns one page of verifications, newest first, and how many match in all.
func (s *Service) List(ctx context.Context, f Filter) ([]Verification, sqlpage.Page, error) {
	var w sqlpage.Where
	if f.Role != "" {
		if f.Role != Originator && f.Role != Beneficiary {
			return nil, sqlpage.Page{}, apperr.Bad("role: want ORIGINATOR or BENEFICIARY, got %q", f.Role)
		}
		w.Add("role = $%d", string(f.Role))
	}
	if f.Result != "" {
		if f.Result != Pending && !f.Result.Terminal() {
			return nil, sqlpage.Page{}, apperr.Bad("result: want PENDING, VERIFIED, DENIED, UNKNOWN or ERROR, got %s", validate.Quote(string(f.Result)))
		}
		w.Add("result = $%d", string(f.Result))
	}
	if f.Symbol != "" {
		a, ok := s.reg.Asset(f.Symbol)
		if !ok {
			return nil, sqlpage.Page{}, apperr.Bad("symbol: %q is not an asset Chainalysis KYT supports", f.Symbol)
		}
		w.Add("asset = $%d", a.Symbol)
	}
	if f.Network != "" {
		n, ok := s.reg.Network(f.Network)
		if !ok {
			return nil, sqlpage.Page{}, apperr.Bad("network: %q is not supported", f.Network)
		}
		w.Add("network = $%d", n.Name)
	}
	if f.TxHash != "" {
		// As the tx report compares (network.SameTxHash): a hexadecimal hash in any case, with
		// or without 0x, however it was reported; others exactly. The lower(tx_hash) index
		// serves it (db/schema/00012_tx_hash_lower.sql).
		if h := network.HexTxHash(strings.TrimSpace(f.TxHash)); h != "" {
			w.Add("lower(tx_hash) = ANY($%d)", []string{h, "0x" + h})
		} else {
			w.Add("tx_hash = $%d", f.TxHash)
		}
	}
	if f.OriginatingVaspID != "" {
		w.Add("originating_vasp_id = $%d", f.OriginatingVaspID)
	}
	if f.BeneficiaryVaspID != "" {
		w.Add("beneficiary_vasp_id = $%d", f.BeneficiaryVaspID)
	}
	if f.From != nil {
		w.Add("created_at >= $%d", *f.From)
	}
	if f.To != nil {
		w.Add("created_at <= $%d", *f.To)
	}
	l := verificationList
	l.Columns = listColumns
	if f.WithPayload {
		if f.Page.Limit > MaxLimitWithPayload {
			return nil, sqlpage.Page{}, apperr.Bad("limit: at most %d with include=payload, got %d", MaxLimitWithPayload, f.Page.Limit)
		}
		l.Columns = columns
	}
	rows, p, err := sqlpage.Select(ctx, s.db, l, w, f.Page, func(r row) sqlpage.Key { return sqlpage.Key{Time: r.CreatedAt, ID: r.UUID} })
	if err != nil {
		return nil, p, err
	}
	out := make([]Verification, 0, len(rows))
	for _, r := range rows {
		// One row sealed by a key the keyset lacks (a bench run with a throwaway key, a
		// restored backup) must not fail the page: it is listed without its personal data.
		v, err := r.shown(s.seal)
		if err != nil {
			return nil, p, err
		}
		out = append(out, v)
	}
	return out, p, nil
}

// ReportTx records this VASP's own Transaction Result Report on an ORIGINATOR verification.
// Reporting the same hash again is a harmless success; a different hash, or a BENEFICIARY
// verification, is BAD-REQUEST. then runs in the transaction that records a new report.
func (s *Service) ReportTx(ctx context.Context, r TxReport, then Then) (Verification, error) {
	return s.reportTx(ctx, r, then, func(v Verification) error {
		if v.Role != Originator {
			return apperr.Bad("verificationUuid: %s is a BENEFICIARY verification; only the originator reports the transaction", v.UUID)
		}
		return nil
	})
}

// ReceiveTxReport records the originator's Transaction Result Report sent by the counterparty
// enclave sender on a BENEFICIARY verification it started. A verification the sender did not
// start is NOT-FOUND-VERIFICATION, as if it did not exist. then runs in the transaction that
// records a new report.
func (s *Service) ReceiveTxReport(ctx context.Context, sender string, r TxReport, then Then) (Verification, error) {
	return s.reportTx(ctx, r, then, func(v Verification) error {
		if v.Role != Beneficiary || v.OriginatingVaspID != sender {
			return NotFound(v.UUID)
		}
		return nil
	})
}

func (s *Service) reportTx(ctx context.Context, r TxReport, then Then, allowed func(Verification) error) (Verification, error) {
	if err := validate.Struct(r); err != nil {
		return Verification{}, err
	}
	id := ids.Canonical(r.VerificationUUID)
	v, err := s.FindWithoutPayload(ctx, id)
	if err != nil {
		return v, err
	}
	if err := allowed(v); err != nil {
		return v, err
	}
	if asset, ok := s.reg.Asset(v.Asset); ok {
		if ns := s.reg.Candidates(asset, v.Network); !ns.ValidTxHash(r.TxHash) {
			return v, apperr.Bad("txHash: %q is not a transaction hash on %s", r.TxHash, ns)
		}
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return v, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var out row
	err = tx.GetContext(ctx, &out, `
		UPDATE verifications SET tx_hash = $2, vout = $3, ordered_at = now(), updated_at = now()
		WHERE uuid = $1 AND tx_hash IS NULL
		RETURNING `+listColumns, id, r.TxHash, r.Vout)
	switch {
	case err == nil:
		if v, err = out.verification(s.seal); err != nil {
			return v, err
		}
		if then != nil {
			if err := then(ctx, tx, v); err != nil {
				return v, err
			}
		}
		return v, tx.Commit()
	case !errors.Is(err, sql.ErrNoRows):
		return v, fmt.Errorf("report tx on %s: %w", id, err)
	}
	tx.Rollback() //nolint:errcheck // nothing was written
	// A report was recorded before us (perhaps a moment ago): same report is success.
	if v, err = s.FindWithoutPayload(ctx, id); err != nil {
		return v, err
	}
	if !network.SameTxHash(v.TxHash, r.TxHash) {
		return v, apperr.Bad("txHash: verification %s already has txHash %s reported", id, v.TxHash)
	}
	if r.Vout != nil && (v.Vout == nil || *v.Vout != *r.Vout) {
		return v, apperr.Bad("vout: verification %s already has its transaction reported with another vout", id)
	}
	return v, nil
}

// RekeyProgress is what one batch of Rekey did and what is left.
type RekeyProgress struct {
	Resealed  int // rows sealed anew by this call
	Remaining int // rows not yet under the primary key (plain or an older key)
}

// notUnderPrimary selects the rows Rekey has to seal, the primary key's id being $1.
const notUnderPrimary = `(payload_sealed IS NULL OR payload_key_id IS DISTINCT FROM $1
	OR (result_sealed IS NOT NULL AND result_key_id IS DISTINCT FROM $1))`

// Rekey seals under the keyset's primary key up to batch rows that are not: plain payloads
// written before payloads were sealed, and payloads sealed with an older key. It is online
// and safe to interrupt or to run from several processes at once: each batch is one short
// transaction that locks only its own rows, skipping rows another process holds.
func (s *Service) Rekey(ctx context.Context, batch int) (RekeyProgress, error) {
	var p RekeyProgress
	primary := int64(s.seal.Primary())
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return p, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var rows []row
	if err := tx.SelectContext(ctx, &rows, `SELECT `+columns+` FROM verifications WHERE `+notUnderPrimary+`
		ORDER BY uuid LIMIT $2 FOR UPDATE SKIP LOCKED`, primary, batch); err != nil {
		return p, fmt.Errorf("rekey: select: %w", err)
	}
	for _, r := range rows {
		payload, err := openPayload(s.seal, r)
		if err != nil {
			return p, fmt.Errorf("rekey verification %s: %w", r.UUID, err)
		}
		sealed, keyID, err := sealPayload(s.seal, r.UUID, payload)
		if err != nil {
			return p, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE verifications SET payload = NULL, payload_sealed = $2, payload_key_id = $3
			WHERE uuid = $1`, r.UUID, sealed, keyID); err != nil {
			return p, fmt.Errorf("rekey verification %s: %w", r.UUID, err)
		}
		if r.ResultSealed != nil {
			if err := s.sealResult(ctx, tx, r.UUID, r.ResultSealed); err != nil {
				return p, fmt.Errorf("rekey verification %s: %w", r.UUID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return p, err
	}
	p.Resealed = len(rows)
	err = s.db.GetContext(ctx, &p.Remaining, `SELECT count(*) FROM verifications WHERE `+notUnderPrimary, primary)
	return p, err
}

// sealResult seals the beneficiary IVMS101 of a verification's result anew under the primary
// key; sealed is its current ciphertext.
func (s *Service) sealResult(ctx context.Context, tx *sqlx.Tx, id string, sealed []byte) error {
	plain, err := s.seal.Open(sealed, resultAAD(id))
	if err != nil {
		return err
	}
	return s.storeResult(ctx, tx, id, plain)
}

// storeResult seals b, the beneficiary IVMS101 of a verification's result, into its row.
func (s *Service) storeResult(ctx context.Context, tx *sqlx.Tx, id string, b []byte) error {
	c, err := s.seal.Seal(b, resultAAD(id))
	if err != nil {
		return fmt.Errorf("seal result: %w", err)
	}
	_, err = tx.ExecContext(ctx, `UPDATE verifications SET result_sealed = $2, result_key_id = $3 WHERE uuid = $1`, id, c, int64(seal.KeyID(c)))
	return err
}

// KeyUse counts verifications by the key that sealed their payload ("plain" for rows not yet
// sealed), for /metrics: a rotation is done when only the primary's count is left.
func (s *Service) KeyUse(ctx context.Context) (map[string]int, error) {
	var rows []struct {
		Key string `db:"key"`
		N   int    `db:"n"`
	}
	if err := s.db.SelectContext(ctx, &rows, `SELECT coalesce(payload_key_id::text, 'plain') AS key, count(*) AS n
		FROM verifications GROUP BY 1`); err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Key] = r.N
	}
	return out, nil
}

// Change runs f on verification id in one transaction holding its row (FOR UPDATE), so the
// exchange decides each transition from the verification as it stands, however many
// messages about it arrive at once, and stores the work that goes with it (a message, a
// callback) in the same transaction. An unknown id is NOT-FOUND-VERIFICATION. f sees the
// verification without its payload; it returns an error to store nothing.
func (s *Service) Change(ctx context.Context, id string, f func(tx *sqlx.Tx, v Verification) error) (Verification, error) {
	u, err := ids.UUID("verificationUuid", id)
	if err != nil {
		return Verification{}, err
	}
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return Verification{}, err
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	var r row
	err = tx.GetContext(ctx, &r, `SELECT `+listColumns+` FROM verifications WHERE uuid = $1 FOR UPDATE`, u)
	if errors.Is(err, sql.ErrNoRows) {
		return Verification{}, NotFound(u)
	}
	if err != nil {
		return Verification{}, fmt.Errorf("lock verification %s: %w", u, err)
	}
	v, err := r.verification(s.seal)
	if err != nil {
		return v, err
	}
	if err := f(tx, v); err != nil {
		return v, err
	}
	return v, tx.Commit()
}

// SetOutcome stores o as v's result in tx, the beneficiary IVMS101 sealed, and returns v with it.
func (s *Service) SetOutcome(ctx context.Context, tx *sqlx.Tx, v Verification, o Outcome) (Verification, error) {
	var at time.Time
	if err := tx.GetContext(ctx, &at, `UPDATE verifications SET result = $2, reason = $3, message = $4, result_at = now(), updated_at = now()
		WHERE uuid = $1 RETURNING result_at`, v.UUID, string(o.Result), str(o.Reason), str(o.Message)); err != nil {
		return v, fmt.Errorf("store result of %s: %w", v.UUID, err)
	}
	if len(o.Beneficiary) > 0 {
		if err := s.storeResult(ctx, tx, v.UUID, o.Beneficiary); err != nil {
			return v, err
		}
	}
	at = at.UTC()
	v.Outcome, v.ResultAt = o, &at
	return v, nil
}

// SetErrorReport stores r as v's error report in tx and returns v with it.
func (s *Service) SetErrorReport(ctx context.Context, tx *sqlx.Tx, v Verification, r ErrorReport) (Verification, error) {
	var at time.Time
	if err := tx.GetContext(ctx, &at, `UPDATE verifications SET error_result = $2, error_reason = $3, error_message = $4, error_from = $5,
		error_at = now(), updated_at = now() WHERE uuid = $1 RETURNING error_at`, v.UUID, r.Result, r.Reason, str(r.Message), r.From); err != nil {
		return v, fmt.Errorf("store error report of %s: %w", v.UUID, err)
	}
	r.At = at.UTC()
	v.ErrorReport = &r
	return v, nil
}
