package ids

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOnlyTheCanonicalFormIsAUUID(t *testing.T) {
	t.Parallel()
	got, err := UUID("requestId", " 3FA85F64-5717-4562-B3FC-2C963F66AFA6 ")
	require.NoError(t, err)
	require.Equal(t, "3fa85f64-5717-4562-b3fc-2c963f66afa6", got)
	for _, bad := range []string{"", "urn:uuid:3fa85f64-5717-4562-b3fc-2c963f66afa6", "{3fa85f64-5717-4562-b3fc-2c963f66afa6}",
		"3fa85f6457174562b3fc2c963f66afa6", "3fa85f64-5717-4562-b3fc-2c963f66afa\x00", "hello"} {
		_, err := UUID("requestId", bad)
		require.ErrorContains(t, err, "requestId:", "%q", bad)
	}
}
