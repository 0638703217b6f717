package trp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/apperr"
)

const inquiry = `{"asset":{"slip0044":60},"amount":1.5,"callback":"https://originator.example/cb?q=1",
	"IVMS101":{"originator":{"originatorPersons":[]},"beneficiary":{"beneficiaryPersons":[]}}}`

func TestReadInquiry(t *testing.T) {
	in, err := ReadInquiry([]byte(inquiry))
	require.NoError(t, err)
	require.Equal(t, Coin(60), *in.Asset.SLIP0044)
	require.Equal(t, "1.5", string(in.Amount))

	// The amount as a string, the coin as TRISA's library writes it: the same reading.
	in, err = ReadInquiry([]byte(strings.NewReplacer(`1.5`, `"0.000000000000000001"`, `60`, `"ETH"`).Replace(inquiry)))
	require.NoError(t, err)
	require.Equal(t, Coin(60), *in.Asset.SLIP0044)
	require.Equal(t, "0.000000000000000001", string(in.Amount), "no float on the way")
	in, err = ReadInquiry([]byte(strings.Replace(inquiry, `1.5`, `123456789012345678901234567890.123456789`, 1)))
	require.NoError(t, err)
	require.Equal(t, "123456789012345678901234567890.123456789", string(in.Amount))
}

func TestReadInquiryNamesTheField(t *testing.T) {
	for field, body := range map[string]string{
		"request body":        `[]`,
		"asset":               strings.Replace(inquiry, `{"slip0044":60}`, `{}`, 1),
		"asset.slip0044":      strings.Replace(inquiry, `60`, `"DOGECOINX"`, 1),
		"amount":              strings.Replace(inquiry, `1.5`, `-1`, 1),
		"callback":            strings.Replace(inquiry, `https://originator.example`, `http://originator.example`, 1),
		"IVMS101":             strings.Replace(inquiry, `"IVMS101":{`, `"IVMS101":7,"x":{`, 1),
		"IVMS101.beneficiary": strings.Replace(inquiry, `"beneficiary":{"beneficiaryPersons":[]}`, `"beneficiary":null`, 1),
		"asset.slip0044 ":     strings.Replace(inquiry, `60`, `true`, 1),
		"amount ":             strings.Replace(inquiry, `1.5`, `{}`, 1),
	} {
		_, err := ReadInquiry([]byte(body))
		e, ok := apperr.As(err)
		require.True(t, ok, "%s: %v", field, err)
		require.Equal(t, apperr.BadRequest, e.Code, field)
		require.True(t, strings.HasPrefix(e.Message, strings.TrimSpace(field)), "%s: %s", field, e.Message)
	}
}

func TestReadResolutionAndConfirmation(t *testing.T) {
	r, err := ReadResolution([]byte(`{"approved":{"address":"0xabc","callback":"https://b.example/c"}}`))
	require.NoError(t, err)
	require.Equal(t, "0xabc", r.Approved.Address)
	r, err = ReadResolution([]byte(`{"rejected":"` + strings.Repeat("é", 900) + `"}`))
	require.NoError(t, err)
	require.LessOrEqual(t, len(r.Rejected), MaxReasonLen)
	for _, bad := range []string{`{}`, `{"version":"3.1.0","rejected":"no"}`, `{"version":"2.0"}`, `{"approved":{"address":"","callback":"https://x.example"}}`,
		`{"approved":{"address":"a","callback":"ftp://x"}}`, `{"rejected":"a","rejected":"b"}`} {
		_, err := ReadResolution([]byte(bad))
		require.Error(t, err, bad)
	}
	c, err := ReadConfirmation([]byte(`{"txid":"0x1"}`))
	require.NoError(t, err)
	require.Equal(t, "0x1", c.TxID)
	for _, bad := range []string{`{}`, `{"txid":"a","canceled":"b"}`, `{"txid":5}`} {
		_, err := ReadConfirmation([]byte(bad))
		require.Error(t, err, bad)
	}
}

// TestCheckRequest: the statuses TRISA's openvasp.APIChecks answers.
func TestCheckRequest(t *testing.T) {
	for name, c := range map[string]struct {
		method, version, id, ctype string
		want                       int
	}{
		"Good":         {"POST", "3.1.0", "id", "application/json; charset=utf-8", 0},
		"AnyThree":     {"POST", "3.0.0", "id", "", 0},
		"GET":          {"GET", "3.1.0", "id", "application/json", 405},
		"NoVersion":    {"POST", "", "id", "application/json", 400},
		"NoIdentifier": {"POST", "3.1.0", "", "application/json", 400},
		"NotJSON":      {"POST", "3.1.0", "id", "text/plain", 415},
		"BadMediaType": {"POST", "3.1.0", "id", ";;", 415},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		r.Header = http.Header{}
		for k, v := range map[string]string{HeaderAPIVersion: c.version, HeaderRequestIdentifier: c.id, "Content-Type": c.ctype} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		st, _ := CheckRequest(r)
		require.Equal(t, c.want, st, name)
	}
}

// FuzzReadInquiry: any body is an Inquiry or a BAD-REQUEST naming what is wrong, never a panic
// or another error; what is accepted has a positive decimal amount and a callback a request
// may go to.
func FuzzReadInquiry(f *testing.F) {
	f.Add([]byte(inquiry))
	f.Add([]byte(strings.Replace(inquiry, `60`, `"ETH"`, 1)))
	f.Add([]byte(`{"asset":{"dti":"4H95J0R2X"},"amount":"0.000021","callback":"https://o.example","IVMS101":{"beneficiary":{}}}`))
	f.Add([]byte(`{"amount":1e400}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		in, err := ReadInquiry(body)
		if err != nil {
			if _, ok := apperr.As(err); !ok {
				t.Fatalf("not an apperr: %v", err)
			}
			return
		}
		if CheckCallback("callback", in.Callback) != nil || in.Amount == "" {
			t.Fatalf("accepted %s", body)
		}
		if !json.Valid(in.IVMS101) {
			t.Fatalf("IVMS101 not JSON")
		}
	})
}

// FuzzReadResolution and FuzzReadConfirmation: exactly one answer, or a BAD-REQUEST.
func FuzzReadResolution(f *testing.F) {
	for _, s := range []string{`{"version":"3.1.0"}`, `{"approved":{"address":"0xabc","callback":"https://b.example/c"}}`, `{"rejected":"no"}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ReadResolution(body)
		if err != nil {
			if _, ok := apperr.As(err); !ok {
				t.Fatalf("not an apperr: %v", err)
			}
			return
		}
		n := 0
		for _, set := range []bool{r.Version != "", r.Approved != nil, r.Rejected != ""} {
			if set {
				n++
			}
		}
		if n != 1 || len(r.Rejected) > MaxReasonLen {
			t.Fatalf("accepted %s as %+v", body, r)
		}
	})
}

func FuzzReadConfirmation(f *testing.F) {
	for _, s := range []string{`{"txid":"0x1"}`, `{"canceled":"changed my mind"}`, `{"txid":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c, err := ReadConfirmation(body)
		if err != nil {
			if _, ok := apperr.As(err); !ok {
				t.Fatalf("not an apperr: %v", err)
			}
			return
		}
		if (c.TxID == "") == (c.Canceled == "") {
			t.Fatalf("accepted %s as %+v", body, c)
		}
	})
}
