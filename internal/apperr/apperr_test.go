package apperr

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type role string

func TestMessagesQuoteAtMostMaxQuotedBytesOfAValue(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("<", 140_000)
	for name, arg := range map[string]any{"String": huge, "NamedString": role(huge), "Bytes": []byte(huge), "Error": errors.New(huge)} {
		t.Run(name, func(t *testing.T) {
			for _, verb := range []string{"%q", "%s", "%v"} {
				m := Bad("symbol: "+verb+" is not an asset", arg).Message
				require.Less(t, len(m), MaxQuoted+100, verb)
				require.Contains(t, m, "… (140000 bytes)", verb)
			}
		})
	}
	require.Equal(t, `symbol: "BTC" is not an asset`, Bad("symbol: %q is not an asset", "BTC").Message, "short values unchanged")
	require.Equal(t, "limit: 7", Bad("limit: %d", 7).Message, "numbers unchanged")
	// A cut never splits a character.
	q := Quote(strings.Repeat("é", 150))
	require.True(t, strings.HasPrefix(q, `"`+strings.Repeat("é", 100)+`"…`), q)
}
