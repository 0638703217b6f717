package verification

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/network"
	"github.com/travelrule/enclave/internal/validate"
)

const inbound = `{"verificationUuid":"3fa85f64-5717-4562-b3fc-2c963f66afa6","originatingVaspId":"VASP-1",
	"beneficiaryVaspId":"VASP-2","assetInfo":{"symbol":"eth","amount":1.5},
	"payload":{"version":"101","ivms101":{"originator":{"accountNumber":[]},
	"beneficiary":{"accountNumber":[" 0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1 "]}}}}`

func decodeInbound(t *testing.T, body string) Inbound {
	t.Helper()
	var d Inbound
	require.NoError(t, json.Unmarshal([]byte(body), &d))
	return d
}

func TestPayloadIsKeptAsReceivedAndReadForAddresses(t *testing.T) {
	t.Parallel()
	d := decodeInbound(t, inbound)
	require.NoError(t, validate.Struct(d))
	v, err := d.resolve(network.Default(), Beneficiary)
	require.NoError(t, err)
	require.Equal(t, "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1", v.BeneficiaryAddress)
	require.Empty(t, v.OriginatorAddress)
	require.Equal(t, "ETH", v.Asset)
	require.Equal(t, "1.5", v.Amount)
	require.JSONEq(t, `{"version":"101","ivms101":{"originator":{"accountNumber":[]},
		"beneficiary":{"accountNumber":[" 0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1 "]}}}`, string(v.Payload))
	b, err := json.Marshal(d.Payload)
	require.NoError(t, err)
	require.JSONEq(t, string(d.Payload.RawMessage), string(b), "a payload marshals as the bytes received")
}

func TestPayloadShape(t *testing.T) {
	t.Parallel()
	with := func(payload string) string {
		return strings.Replace(inbound, inbound[strings.Index(inbound, `"payload":`):], `"payload":`+payload+`}`, 1)
	}
	for _, c := range []struct {
		name, payload string
		want          []apperr.Problem
	}{
		{"Missing", `null`, []apperr.Problem{{Field: "payload", Rule: "required"}}},
		{"NoIVMS101", `{"version":"101"}`, []apperr.Problem{{Field: "payload.ivms101", Rule: "required"}}},
		{"NoBeneficiary", `{"ivms101":{}}`, []apperr.Problem{{Field: "payload.ivms101.beneficiary", Rule: "required"}}},
		{"NoWallet", `{"ivms101":{"beneficiary":{}}}`, []apperr.Problem{{Field: "payload.ivms101.beneficiary.accountNumber", Rule: "min"}}},
		{"EmptyWallet", `{"ivms101":{"beneficiary":{"accountNumber":[""]}}}`,
			[]apperr.Problem{{Field: "payload.ivms101.beneficiary.accountNumber[0]", Rule: "required"}}},
		{"TooLarge", fmt.Sprintf(`{"ivms101":{"beneficiary":{"accountNumber":["0x00"]}},"pad":"%s"}`, strings.Repeat("x", MaxPayloadBytes)),
			[]apperr.Problem{{Field: "payload", Rule: "max"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, ok := apperr.As(validate.Struct(decodeInbound(t, with(c.payload))))
			require.True(t, ok)
			require.Equal(t, c.want, e.Problems, e.Message)
		})
	}
	t.Run("AtTheLimit", func(t *testing.T) {
		t.Parallel()
		head := `{"ivms101":{"beneficiary":{"accountNumber":["0x00"]}},"pad":"`
		p := head + strings.Repeat("x", MaxPayloadBytes-len(head)-2) + `"}`
		require.Len(t, p, MaxPayloadBytes)
		require.NoError(t, validate.Struct(decodeInbound(t, with(p))), "the payload tag's max is MaxPayloadBytes")
	})
	var d Inbound
	err := json.Unmarshal([]byte(with(`["not","an","object"]`)), &d)
	require.ErrorContains(t, err, "payload")
}

// FuzzInbound: whatever a counterparty sends, decoding, the shape check and the domain rules
// after it never panic (resolve indexes what the shape check guarantees), and every refusal
// is one of the VerifyVASP 400s.
// Run longer with: go test ./internal/verification -run '^$' -fuzz FuzzInbound -fuzztime 60s
func FuzzInbound(f *testing.F) {
	for _, s := range []string{inbound, `{}`, `{"payload":null}`, `{"payload":{"ivms101":{"beneficiary":{"accountNumber":[]}}}}`,
		`{"payload":{"ivms101":{"beneficiary":{"accountNumber":[null]}}}}`, `{"assetInfo":{"amount":"0"},"beneficiaryVaspId":".."}`,
		`{"verificationUuid":"   ","payload":{"ivms101":{"originator":null,"beneficiary":{"accountNumber":["x"]}}}}`} {
		f.Add([]byte(s))
	}
	reg := network.Default()
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Inbound
		if json.Unmarshal(b, &d) != nil {
			return
		}
		err := validate.Struct(d)
		if err == nil {
			_, err = d.resolve(reg, Beneficiary)
		}
		if e, ok := apperr.As(err); err != nil && (!ok || (e.Code != apperr.BadRequest && e.Code != apperr.MissingVerificationUUID)) {
			t.Fatalf("%q refused with %v", b, err)
		}
	})
}
