package validate

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/apperr"
)

type asset struct {
	Symbol string `json:"symbol" validate:"required,max=32"`
	Amount string `json:"amount" validate:"required,decimal"`
	Price  string `json:"tradePrice,omitempty" validate:"omitempty,decimal0"`
	At     string `json:"tradeISODateTime,omitempty" validate:"omitempty,rfc3339"`
}

type raw []byte

type blob struct {
	raw `validate:"max=2"`
}

type keyed struct {
	Key string `json:"-"`
	Ref string `json:"ref,omitempty" validate:"omitempty,max=4"`
}

type person struct {
	AccountNumber []string `json:"accountNumber" validate:"required,min=1,dive,required,max=8"`
}

type request struct {
	VerificationUUID  string  `json:"verificationUuid" validate:"required,uuid"`
	BeneficiaryVaspID string  `json:"beneficiaryVaspId" validate:"required,vaspid"`
	AssetInfo         asset   `json:"assetInfo"`
	Beneficiary       *person `json:"beneficiary" validate:"required"`
	TxHash            string  `json:"txHash,omitempty" validate:"omitempty,txhash"`
	Vout              *int    `json:"vout,omitempty" validate:"omitempty,min=0"`
	Result            string  `json:"result,omitempty" validate:"omitempty,oneof=VERIFIED DENIED"`
	Blob              blob    `json:"blob"`
	keyed
}

func good() request {
	return request{
		VerificationUUID: "3fa85f64-5717-4562-b3fc-2c963f66afa6", BeneficiaryVaspID: "VASP-2",
		AssetInfo:   asset{Symbol: "ETH", Amount: "1.25", Price: "0", At: "2023-05-18T12:39:44Z"},
		Beneficiary: &person{AccountNumber: []string{"0xabc"}},
	}
}

func problem(t *testing.T, err error) *apperr.Error {
	t.Helper()
	e, ok := apperr.As(err)
	require.True(t, ok, "want an apperr.Error, got %v", err)
	return e
}

func TestAGoodRequestPasses(t *testing.T) {
	t.Parallel()
	r := good()
	require.NoError(t, Struct(r))
	require.NoError(t, Struct(&r))
	r.VerificationUUID = "3FA85F64-5717-4562-B3FC-2C963F66AFA6" // VASPs send upper case
	require.NoError(t, Struct(r))
}

func TestEveryProblemInOneAnswerNamedByJSONPath(t *testing.T) {
	t.Parallel()
	minus := -1
	r := good()
	r.BeneficiaryVaspID = ""
	r.AssetInfo.Amount = "-1"
	r.AssetInfo.At = "yesterday"
	r.Beneficiary.AccountNumber = []string{"", "0123456789"}
	r.TxHash = "a b"
	r.Vout = &minus
	r.Result = "MAYBE"
	r.Ref = "too long"
	r.Blob.raw = raw("abc")

	e := problem(t, Struct(r))
	require.Equal(t, apperr.BadRequest, e.Code)
	require.Equal(t, []apperr.Problem{
		{Field: "beneficiaryVaspId", Rule: "required"},
		{Field: "assetInfo.amount", Rule: "decimal"},
		{Field: "assetInfo.tradeISODateTime", Rule: "rfc3339"},
		{Field: "beneficiary.accountNumber[0]", Rule: "required"},
		{Field: "beneficiary.accountNumber[1]", Rule: "max"},
		{Field: "txHash", Rule: "txhash"},
		{Field: "vout", Rule: "min"},
		{Field: "result", Rule: "oneof"},
		{Field: "blob", Rule: "max"}, // a rule on an embedded value is about the field embedding it
		{Field: "ref", Rule: "max"},  // an embedded struct's fields are the parent's, as in JSON
	}, e.Problems)
	for _, want := range []string{
		"beneficiaryVaspId: required",
		`assetInfo.amount: must be a positive decimal such as "1.25", got "-1"`,
		`assetInfo.tradeISODateTime: must be an ISO 8601 date-time such as 2023-05-18T12:39:44Z, got "yesterday"`,
		"beneficiary.accountNumber[0]: required",
		`beneficiary.accountNumber[1]: must be at most 8 characters, got "0123456789"`,
		`txHash: must be a transaction hash without spaces or ':' (at most 200 characters), got "a b"`,
		"vout: must be at least 0, got -1",
		`result: must be one of VERIFIED, DENIED, got "MAYBE"`,
	} {
		require.Contains(t, e.Message, want)
	}
	require.Contains(t, e.Message, "blob: must be at most 2 bytes")
	require.Equal(t, 10, strings.Count(e.Message, "; ")+1, e.Message)
}

func TestAMissingVerificationUUIDIsVerifyVASPsOwnCode(t *testing.T) {
	t.Parallel()
	for name, id := range map[string]string{"Empty": "", "Blank": "   "} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := good()
			r.VerificationUUID = id
			r.AssetInfo.Amount = "0"
			e := problem(t, Struct(r))
			require.Equal(t, apperr.MissingVerificationUUID, e.Code)
			require.Equal(t, "`verificationUuid` is required.", e.Message)
			require.Empty(t, e.Problems, "VerifyVASP's answer exactly, nothing added")
		})
	}
}

func TestAMalformedVerificationUUIDIsABadRequest(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"hello", "{3fa85f64-5717-4562-b3fc-2c963f66afa6}", "3fa85f6457174562b3fc2c963f66afa6"} {
		r := good()
		r.VerificationUUID = id
		e := problem(t, Struct(r))
		require.Equal(t, apperr.BadRequest, e.Code)
		require.Equal(t, []apperr.Problem{{Field: "verificationUuid", Rule: "uuid"}}, e.Problems)
		require.Contains(t, e.Message, "verificationUuid: must be a UUID")
	}
}

func TestABadValueIsQuotedAtMost200Bytes(t *testing.T) {
	t.Parallel()
	r := good()
	r.AssetInfo.Amount = strings.Repeat("é", 10_000)
	e := problem(t, Struct(r))
	require.Less(t, len(e.Message), 400, e.Message)
	require.Contains(t, e.Message, "(20000 bytes)")
	require.NotContains(t, e.Message, `\x`, "cut at a character boundary")
}

func TestCustomRules(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		fn   func(string) bool
		good []string
		bad  []string
	}{
		{"VASPID", VASPID, []string{"VASP-2", "a", "did:web:example.com", strings.Repeat("v", 64)},
			[]string{"", ".", "..", "a b", "a/b", "a?b", "a#b", "a%2F", "é", "a\x00", strings.Repeat("v", 65)}},
		{"PositiveDecimal", PositiveDecimal, []string{"1", "1.25", "0.000001", strings.Repeat("9", 30) + "." + strings.Repeat("9", 30)},
			[]string{"", "0", "0.00", "-1", "1e3", "1.", ".5", " 1", "0x10", strings.Repeat("9", 31)}},
		{"Decimal", Decimal, []string{"0", "0.0", "1820.17"}, []string{"", "-0.1", "NaN", "1,5"}},
	} {
		for _, s := range c.good {
			require.True(t, c.fn(s), "%s(%q)", c.name, s)
		}
		for _, s := range c.bad {
			require.False(t, c.fn(s), "%s(%q)", c.name, s)
		}
	}
}

func TestNotAStructIsAProgrammingError(t *testing.T) {
	t.Parallel()
	err := Struct("a string")
	require.Error(t, err)
	_, ok := apperr.As(err)
	require.False(t, ok, "not a caller's fault: answered as INTERNAL-ERROR")
}

func TestLengthsSayWhatTheyCount(t *testing.T) {
	t.Parallel()
	type sizes struct {
		Name  string   `json:"name" validate:"max=3"`
		Blob  []byte   `json:"blob" validate:"max=4"`
		List  []string `json:"list" validate:"min=1"`
		Count int      `json:"count" validate:"lte=9"`
	}
	e := problem(t, Struct(sizes{Name: "abcd", Blob: []byte("12345"), Count: 10}))
	require.Equal(t, `name: must be at most 3 characters, got "abcd"; blob: must be at most 4 bytes; `+
		`list: must hold at least 1 item; count: must be at most 9, got 10`, e.Message)
}
