package traddr

import (
	"strings"
	"testing"

	"github.com/mr-tron/base58"
	"github.com/stretchr/testify/require"
)

// The specification's and TRISA's published vectors: the same URL gives the same address.
var vectors = []struct{ url, ta string }{
	{"https://beneficiary.com/x/12345?t=i", "ta2W2HPKfHxgSgrzY178knqXHg1H3jfeQrwQ9JrKBs9wv"},
	{"https://beneficiary.com/x/12345", "ta2W2HPKfHxgSgrzY178knqXHg1H3jfeQrwQ9JrKBs9wv"},
	{"https://beneficiary.com/x/12345?t=i&foo=bar&color=red", "taGw1e4cjuujwyHBV51aspbLBUbcDhebW7ss8iF6dLEn19WfyQZt6HaUTStSE2YcadkFG"},
	{"https://trisa.beneficiary.com/x/12345", "ta4uMjxqDq4t7nefCdrm4ssCTewVbvBLzmUnVcYe4SXqGafPTPewG"},
}

func TestEncodeMatchesPublishedVectors(t *testing.T) {
	for _, v := range vectors {
		got, err := Encode(v.url)
		require.NoError(t, err, v.url)
		require.Equal(t, v.ta, got, v.url)
	}
}

func TestDecodeGivesHTTPSURL(t *testing.T) {
	u, err := Decode("ta2W2HPKfHxgSgrzY178knqXHg1H3jfeQrwQ9JrKBs9wv")
	require.NoError(t, err)
	require.Equal(t, "https://beneficiary.com/x/12345?t=i", u)
}

func TestLoopbackMayBePlainHTTP(t *testing.T) {
	ta, err := Encode("http://127.0.0.1:8091/transfers/abc")
	require.NoError(t, err)
	u, err := Decode(ta)
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:8091/transfers/abc?t=i", u)
}

func TestRefused(t *testing.T) {
	good, err := Encode("https://beneficiary.com/x/1")
	require.NoError(t, err)
	changed := good[:10] + map[bool]string{true: "2", false: "3"}[good[10] != '2'] + good[11:]
	for name, c := range map[string]struct{ ta, says string }{
		"NoPrefix":     {strings.TrimPrefix(good, "ta"), `starts with "ta"`},
		"NotBase58":    {"ta0OIl", "base58"},
		"TooShort":     {"ta2", "base58"},
		"Checksum":     {changed, "checksum"},
		"PlainHTTP":    {encodeRaw("http://example.com/x?t=i"), "only a loopback host"},
		"OtherScheme":  {encodeRaw("ftp://example.com/x"), `scheme "ftp"`},
		"Credentials":  {encodeRaw("user:pw@example.com/x"), "credentials"},
		"NoHost":       {encodeRaw("/just/a/path"), "with a host"},
		"Fragment":     {encodeRaw("example.com/x#frag"), "fragment"},
		"VeryLong":     {"ta" + strings.Repeat("2", MaxLen), "at most"},
		"EmptyAfterTa": {"ta", "base58"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(c.ta)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.says)
			require.NotContains(t, err.Error(), "pw", "no credentials in an error")
		})
	}
	_, err = Encode("http://example.com/x")
	require.Error(t, err, "Encode refuses what Decode would")
}

// encodeRaw makes an address of any bytes, valid or not as a URL.
func encodeRaw(s string) string {
	b := []byte(s)
	return prefix + base58.Encode(append(b, checksum(b)...))
}

// FuzzDecode: whatever the input, Decode answers a URL it would send to (https, or http on
// loopback) or an error, never a panic; and what it answers encodes back to an address that
// decodes to the same URL (its query sorted).
func FuzzDecode(f *testing.F) {
	for _, v := range vectors {
		f.Add(v.ta)
	}
	f.Add("ta")
	f.Add("ta226rAKyTmMxzsmkda5U2Vhw1")
	f.Add(encodeRaw("http://127.0.0.1:1/x?t=i"))
	f.Fuzz(func(t *testing.T, ta string) {
		u, err := Decode(ta)
		if err != nil {
			return
		}
		if !strings.HasPrefix(u, "https://") && !(strings.HasPrefix(u, "http://") && LoopbackURL(u)) {
			t.Fatalf("Decode(%q) = %q: neither https nor loopback", ta, u)
		}
		again, err := Encode(u)
		if err != nil {
			t.Fatalf("Encode(Decode(%q) = %q): %v", ta, u, err)
		}
		u2, err := Decode(again)
		if err != nil {
			t.Fatalf("round trip of %q: %v", u, err)
		}
		if again2, _ := Encode(u2); again2 != again {
			t.Fatalf("round trip of %q: %q then %q", u, again, again2)
		}
	})
}
