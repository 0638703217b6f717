package seal

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpenRotate(t *testing.T) {
	t.Parallel()
	ks, err := New()
	require.NoError(t, err)
	s, err := Load(ks)
	require.NoError(t, err)
	c, err := s.Seal([]byte(`{"name":"Alice"}`), []byte("row-1"))
	require.NoError(t, err)
	require.NotContains(t, string(c), "Alice")
	require.Equal(t, s.Primary(), KeyID(c))
	p, err := s.Open(c, []byte("row-1"))
	require.NoError(t, err)
	require.Equal(t, `{"name":"Alice"}`, string(p))

	_, err = s.Open(c, []byte("row-2"))
	require.Error(t, err, "a ciphertext copied onto another row does not open")
	tampered := append([]byte(nil), c...)
	tampered[len(tampered)-1] ^= 1
	_, err = s.Open(tampered, []byte("row-1"))
	require.Error(t, err)

	rotated, id, err := Rotate(ks)
	require.NoError(t, err)
	r, err := Load(rotated)
	require.NoError(t, err)
	require.Equal(t, id, r.Primary())
	require.NotEqual(t, s.Primary(), r.Primary())
	p, err = r.Open(c, []byte("row-1"))
	require.NoError(t, err, "older keys still open")
	require.Equal(t, `{"name":"Alice"}`, string(p))

	other, _ := New()
	o, _ := Load(other)
	_, err = o.Open(c, []byte("row-1"))
	require.Error(t, err, "another keyset does not open it")

	for _, bad := range []string{"", "{", `{"primaryKeyId":1,"key":[]}`, strings.Replace(ks, "AesGcmKey", "AesSivKey", 1)} {
		_, err := Load(bad)
		require.ErrorIs(t, err, ErrKeyset)
		if bad != "" {
			require.NotContains(t, err.Error(), bad)
		}
	}
}

// BenchmarkSeal is what sealing adds to storing a verification: one AES-256-GCM encryption of
// a typical IVMS101 payload (about 1.5 kB: two persons with names, identifiers, addresses).
// go test ./internal/seal -run '^$' -bench . -benchtime 2s
func BenchmarkSeal(b *testing.B) {
	ks, _ := New()
	s, _ := Load(ks)
	payload := []byte(strings.Repeat(`{"nameIdentifier":"Quartermaine","secondary":"Zebulon"},`, 26))
	ad := []byte("3fa85f64-5717-4562-b3fc-2c963f66afa6")
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := s.Seal(payload, ad); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen is what opening adds to reading one.
func BenchmarkOpen(b *testing.B) {
	ks, _ := New()
	s, _ := Load(ks)
	payload := []byte(strings.Repeat(`{"nameIdentifier":"Quartermaine","secondary":"Zebulon"},`, 26))
	ad := []byte("3fa85f64-5717-4562-b3fc-2c963f66afa6")
	c, _ := s.Seal(payload, ad)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := s.Open(c, ad); err != nil {
			b.Fatal(err)
		}
	}
}
