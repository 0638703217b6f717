package verification

import (
	"cmp"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/seal"
)

// columns are the verifications columns every query reads, in row's order.
const columns = `uuid, role, originating_vasp_id, beneficiary_vasp_id, network, asset, amount::text AS amount,
	trade_price::text AS trade_price, trade_currency, trade_iso_datetime, is_exceeding_threshold,
	originator_address, beneficiary_address, payload, payload_sealed, request_sha256, tx_hash, vout, ordered_at,
	created_at, updated_at, result, reason, message, result_at, result_sealed, required_beneficiary_info, deadline_at,
	error_result, error_reason, error_message, error_at, error_from`

// listColumns are columns without the payload, which lists leave out unless asked: the
// personal data of a whole page is neither needed to list nor small.
var listColumns = strings.NewReplacer("payload, payload_sealed,", "NULL::jsonb AS payload, NULL::bytea AS payload_sealed,",
	"result_sealed,", "NULL::bytea AS result_sealed,").Replace(columns)

// row is a verifications row as stored.
type row struct {
	UUID                 string         `db:"uuid"`
	Role                 string         `db:"role"`
	OriginatingVaspID    string         `db:"originating_vasp_id"`
	BeneficiaryVaspID    string         `db:"beneficiary_vasp_id"`
	Network              sql.NullString `db:"network"`
	Asset                string         `db:"asset"`
	Amount               string         `db:"amount"`
	TradePrice           sql.NullString `db:"trade_price"`
	TradeCurrency        sql.NullString `db:"trade_currency"`
	TradeISODateTime     sql.NullString `db:"trade_iso_datetime"`
	IsExceedingThreshold sql.NullBool   `db:"is_exceeding_threshold"`
	OriginatorAddress    sql.NullString `db:"originator_address"`
	BeneficiaryAddress   string         `db:"beneficiary_address"`
	Payload              []byte         `db:"payload"`        // a row written before payloads were sealed
	PayloadSealed        []byte         `db:"payload_sealed"` // seal.Sealer's ciphertext
	RequestSHA256        []byte         `db:"request_sha256"`
	TxHash               sql.NullString `db:"tx_hash"`
	Vout                 sql.NullInt32  `db:"vout"`
	OrderedAt            sql.NullTime   `db:"ordered_at"`
	CreatedAt            time.Time      `db:"created_at"`
	UpdatedAt            time.Time      `db:"updated_at"`
	Result               string         `db:"result"`
	Reason               sql.NullString `db:"reason"`
	Message              sql.NullString `db:"message"`
	ResultAt             sql.NullTime   `db:"result_at"`
	ResultSealed         []byte         `db:"result_sealed"` // the beneficiary IVMS101 the beneficiary VASP returned
	RequiredInfo         sql.NullString `db:"required_beneficiary_info"`
	DeadlineAt           sql.NullTime   `db:"deadline_at"`
	ErrorResult          sql.NullString `db:"error_result"`
	ErrorReason          sql.NullString `db:"error_reason"`
	ErrorMessage         sql.NullString `db:"error_message"`
	ErrorAt              sql.NullTime   `db:"error_at"`
	ErrorFrom            sql.NullString `db:"error_from"`
}

func toRow(v Verification) row {
	r := row{
		UUID: v.UUID, Role: string(v.Role), OriginatingVaspID: v.OriginatingVaspID, BeneficiaryVaspID: v.BeneficiaryVaspID,
		Network: str(v.Network), Asset: v.Asset, Amount: v.Amount, TradePrice: str(v.TradePrice),
		TradeCurrency: str(v.TradeCurrency), TradeISODateTime: str(v.TradeISODateTime),
		OriginatorAddress: str(v.OriginatorAddress), BeneficiaryAddress: v.BeneficiaryAddress,
		Result: string(cmp.Or(v.Outcome.Result, Pending)), RequiredInfo: str(v.RequiredBeneficiaryInfo),
	}
	if v.DeadlineAt != nil {
		r.DeadlineAt = sql.NullTime{Time: *v.DeadlineAt, Valid: true}
	}
	if v.IsExceedingThreshold != nil {
		r.IsExceedingThreshold = sql.NullBool{Bool: *v.IsExceedingThreshold, Valid: true}
	}
	return r
}

func (r row) verification(s *seal.Sealer) (Verification, error) {
	payload, err := openPayload(s, r)
	if err != nil {
		return Verification{}, fmt.Errorf("verification %s: %w", r.UUID, err)
	}
	v := Verification{
		UUID: r.UUID, Role: Role(r.Role), OriginatingVaspID: r.OriginatingVaspID, BeneficiaryVaspID: r.BeneficiaryVaspID,
		Network: r.Network.String, Asset: r.Asset, Amount: r.Amount, TradePrice: r.TradePrice.String,
		TradeCurrency: r.TradeCurrency.String, TradeISODateTime: r.TradeISODateTime.String,
		OriginatorAddress: r.OriginatorAddress.String, BeneficiaryAddress: r.BeneficiaryAddress,
		Payload: payload, TxHash: r.TxHash.String, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		Outcome:                 Outcome{Result: Result(r.Result), Reason: r.Reason.String, Message: r.Message.String},
		ResultAt:                utc(r.ResultAt),
		RequiredBeneficiaryInfo: r.RequiredInfo.String,
		DeadlineAt:              utc(r.DeadlineAt),
	}
	if r.ResultSealed != nil {
		b, err := s.Open(r.ResultSealed, resultAAD(r.UUID))
		if err != nil {
			return Verification{}, fmt.Errorf("verification %s: result: %w", r.UUID, err)
		}
		v.Outcome.Beneficiary = b
	}
	if r.ErrorResult.Valid {
		v.ErrorReport = &ErrorReport{Result: r.ErrorResult.String, Reason: r.ErrorReason.String, Message: r.ErrorMessage.String,
			At: r.ErrorAt.Time.UTC(), From: r.ErrorFrom.String}
	}
	if r.IsExceedingThreshold.Valid {
		b := r.IsExceedingThreshold.Bool
		v.IsExceedingThreshold = &b
	}
	if r.Vout.Valid {
		n := int(r.Vout.Int32)
		v.Vout = &n
	}
	if r.OrderedAt.Valid {
		t := r.OrderedAt.Time.UTC()
		v.OrderedAt = &t
	}
	return v, nil
}

// shown is r as a list shows it: when its sealed payload (or result) does not open with the
// keyset, without them and with PayloadError saying why, so one such row does not fail the
// page. (GET of the one verification still fails, INTERNAL-ERROR with the reason logged: it
// was asked for that payload.) A row read without its payload has nothing to open.
func (r row) shown(s *seal.Sealer) (Verification, error) {
	v, err := r.verification(s)
	if err == nil || (r.PayloadSealed == nil && r.ResultSealed == nil) {
		return v, err
	}
	r.Payload, r.PayloadSealed, r.ResultSealed = nil, nil, nil
	if v, err = r.verification(s); err != nil {
		return v, err
	}
	v.PayloadError = "the payload does not open with ENCLAVE_DATA_KEYSET: sealed by a key it lacks, or altered; " +
		"`enclave rekey` with the keyset that sealed it reseals it"
	return v, nil
}

// sealPayload and openPayload are the only way the IVMS101 payload reaches or leaves the
// database: sealed with the keyset's primary key, the verification's uuid as associated data,
// so that psql, a backup or a replica shows no name, and a ciphertext copied onto another row
// does not open there. It returns the ciphertext and the id of the key that sealed it.
func sealPayload(s *seal.Sealer, uuid string, p json.RawMessage) ([]byte, int64, error) {
	if !json.Valid(p) {
		return nil, 0, fmt.Errorf("payload is not JSON")
	}
	c, err := s.Seal(p, []byte(uuid))
	if err != nil {
		return nil, 0, fmt.Errorf("seal payload: %w", err)
	}
	return c, int64(seal.KeyID(c)), nil
}

// openPayload returns a row's payload: opened when sealed; as stored for a row written before
// payloads were sealed (until `enclave rekey` seals it); nothing when the query left it out.
func openPayload(s *seal.Sealer, r row) (json.RawMessage, error) {
	if r.PayloadSealed == nil {
		return json.RawMessage(r.Payload), nil
	}
	p, err := s.Open(r.PayloadSealed, []byte(r.UUID))
	if err != nil {
		return nil, err
	}
	return json.RawMessage(p), nil
}

// resultAAD binds a sealed result to its verification, apart from its payload: neither opens
// in the other's place.
func resultAAD(uuid string) []byte { return []byte(uuid + "/result") }

func utc(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := t.Time.UTC()
	return &u
}

func str(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }
