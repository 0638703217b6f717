package verification

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/ids"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// Service is the verification half of the enclave. It is safe for concurrent use and holds no
// state of its own beyond its dependencies, so any number of replicas may run it.
type Service struct {
	db     *sqlx.DB
	reg    *network.Registry
	vaspID string
	seal   *seal.Sealer
}

// NewService returns a Service for the VASP vaspID that seals payloads with s.
func NewService(db *sqlx.DB, reg *network.Registry, vaspID string, s *seal.Sealer) *Service {
	return &Service{db: db, reg: reg, vaspID: vaspID, seal: s}
}

// NotFound is the VerifyVASP error for an unknown verification.
func NotFound(id string) error {
	return apperr.New(apperr.NotFoundVerification, "Verification(%s) is not found", id)
}

// CreateOutgoing records a verification this VASP starts: we are ORIGINATOR. It returns
// BAD-REQUEST naming the field at fault.
func (s *Service) CreateOutgoing(ctx context.Context, d Draft) (Verification, error) {
	v, err := d.validate(s.reg, Originator)
	if err != nil {
		return v, err
	}
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
		return s.insert(ctx, v, sum[:], true)
	}
	sum := sha256.Sum256(append([]byte(v.UUID), d.Payload...))
	return s.insert(ctx, v, sum[:], false)
}

// ReceiveIncoming records a verification a counterparty enclave (sender) sent: we are
// BENEFICIARY. body is the request as received; the same body sent again is a harmless
// success, a different one for the same verificationUuid is BAD-REQUEST.
func (s *Service) ReceiveIncoming(ctx context.Context, sender string, d Draft, body []byte) (Verification, error) {
	v, err := d.validate(s.reg, Beneficiary)
	if err != nil {
		return v, err
	}
	if v.BeneficiaryVaspID != s.vaspID {
		return v, apperr.Bad("beneficiaryVaspId: %s is not this VASP (%s)", v.BeneficiaryVaspID, s.vaspID)
	}
	if v.OriginatingVaspID != sender {
		return v, apperr.Bad("originatingVaspId: %s does not match the sending VASP %s", v.OriginatingVaspID, sender)
	}
	sum := sha256.Sum256(body)
	return s.insert(ctx, v, sum[:], false)
}

// insert stores v; when its uuid exists already, the same request (sum) is a harmless
// success and another is BAD-REQUEST, naming Idempotency-Key when keyed.
func (s *Service) insert(ctx context.Context, v Verification, sum []byte, keyed bool) (Verification, error) {
	r := toRow(v)
	r.RequestSHA256 = sum
	sealed, keyID, err := sealPayload(s.seal, v.UUID, v.Payload)
	if err != nil {
		return v, err
	}
	var out row
	err = s.db.GetContext(ctx, &out, `
		INSERT INTO verifications (uuid, role, originating_vasp_id, beneficiary_vasp_id, network, asset, amount,
			trade_price, trade_currency, trade_iso_datetime, is_exceeding_threshold, originator_address,
			beneficiary_address, payload_sealed, payload_key_id, request_sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
		ON CONFLICT (uuid) DO NOTHING
		RETURNING `+columns,
		r.UUID, r.Role, r.OriginatingVaspID, r.BeneficiaryVaspID, r.Network, r.Asset, r.Amount,
		r.TradePrice, r.TradeCurrency, r.TradeISODateTime, r.IsExceedingThreshold, r.OriginatorAddress,
		r.BeneficiaryAddress, sealed, keyID, r.RequestSHA256)
	if errors.Is(err, sql.ErrNoRows) {
		// Already there: a replay of the same request is success, anything else a conflict.
		if err := s.db.GetContext(ctx, &out, `SELECT `+columns+` FROM verifications WHERE uuid = $1`, v.UUID); err != nil {
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
	} else if err != nil {
		return v, fmt.Errorf("insert verification %s: %w", v.UUID, err)
	}
	return out.verification(s.seal)
}

// Find returns one verification, or NOT-FOUND-VERIFICATION.
func (s *Service) Find(ctx context.Context, id string) (Verification, error) {
	return s.find(ctx, id, columns)
}

// FindWithoutPayload is Find for those who need the verification's plain columns only (the
// KYT plan: role, network, asset, addresses, tx report): the personal data stays sealed.
func (s *Service) FindWithoutPayload(ctx context.Context, id string) (Verification, error) {
	return s.find(ctx, id, listColumns)
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
		w.Add("tx_hash = $%d", f.TxHash)
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
		v, err := r.verification(s.seal)
		if err != nil {
			return nil, p, err
		}
		out = append(out, v)
	}
	return out, p, nil
}

// ReportTx records this VASP's own Transaction Result Report on an ORIGINATOR verification.
// Reporting the same hash again is a harmless success; a different hash, or a BENEFICIARY
// verification, is BAD-REQUEST.
func (s *Service) ReportTx(ctx context.Context, r TxReport) (Verification, error) {
	return s.reportTx(ctx, r, func(v Verification) error {
		if v.Role != Originator {
			return apperr.Bad("verificationUuid: %s is a BENEFICIARY verification; only the originator reports the transaction", v.UUID)
		}
		return nil
	})
}

// ReceiveTxReport records the originator's Transaction Result Report sent by the counterparty
// enclave sender on a BENEFICIARY verification it started. A verification the sender did not
// start is NOT-FOUND-VERIFICATION, as if it did not exist.
func (s *Service) ReceiveTxReport(ctx context.Context, sender string, r TxReport) (Verification, error) {
	return s.reportTx(ctx, r, func(v Verification) error {
		if v.Role != Beneficiary || v.OriginatingVaspID != sender {
			return NotFound(v.UUID)
		}
		return nil
	})
}

func (s *Service) reportTx(ctx context.Context, r TxReport, allowed func(Verification) error) (Verification, error) {
	id, err := r.validate()
	if err != nil {
		return Verification{}, err
	}
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
	var out row
	err = s.db.GetContext(ctx, &out, `
		UPDATE verifications SET tx_hash = $2, vout = $3, ordered_at = now(), updated_at = now()
		WHERE uuid = $1 AND tx_hash IS NULL
		RETURNING `+listColumns, id, r.TxHash, r.Vout)
	switch {
	case err == nil:
		return out.verification(s.seal)
	case !errors.Is(err, sql.ErrNoRows):
		return v, fmt.Errorf("report tx on %s: %w", id, err)
	}
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
const notUnderPrimary = `(payload_sealed IS NULL OR payload_key_id IS DISTINCT FROM $1)`

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
	}
	if err := tx.Commit(); err != nil {
		return p, err
	}
	p.Resealed = len(rows)
	err = s.db.GetContext(ctx, &p.Remaining, `SELECT count(*) FROM verifications WHERE `+notUnderPrimary, primary)
	return p, err
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
