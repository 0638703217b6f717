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
