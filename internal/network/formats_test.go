package network

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestAddressesAndHashesOfTheReferenceDocuments: every address and hash the reference documents
// use is accepted on its network; what cannot belong there is refused.
func TestAddressesAndHashesOfTheReferenceDocuments(t *testing.T) {
	t.Parallel()
	r := Default()
	for network, good := range map[string][]string{
		"ETHEREUM": {"0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", "bb3fd383d1c5540e52ef0a7bcb9433375793aeaf", "0x0038AC785dfB6C82b2c9A7B3B6854e08a10cb9f1"},
		"BITCOIN":  {"1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH", "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
		"TRON":     {"TN3W4H6rK2ce4vX9YnFQHwKENnHjoxb3m9"},
	} {
		n, _ := r.Network(network)
		for _, a := range good {
			require.True(t, n.ValidAddress(a), "%s on %s", a, network)
		}
	}
	eth, _ := r.Network("ETHEREUM")
	tron, _ := r.Network("TRON")
	btc, _ := r.Network("BITCOIN")
	for _, bad := range []string{"not-an-address", "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc", "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH", ""} {
		require.False(t, eth.ValidAddress(bad), bad)
	}
	require.False(t, tron.ValidAddress("0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"), "an EVM address is no TRON address")
	require.False(t, btc.ValidAddress("0OIl0000000000000000000000000"), "not base58")

	require.True(t, eth.ValidTxHash("0xe823c9b7895f9c47985c80e4611272f8194403e885c9cc603422cd609d738098"))
	require.True(t, btc.ValidTxHash("0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011"))
	require.False(t, eth.ValidTxHash("hello"))
	require.False(t, eth.ValidTxHash("0xe823"))

	require.True(t, SameTxHash("0xE823C9B7", "0xe823c9b7"), "hex compares without case")
	require.True(t, SameTxHash("e823c9b7", "0xe823c9b7"))
	require.False(t, SameTxHash("0xe823c9b7", "0xe823c9b8"))
	require.False(t, SameTxHash("oAbc", "oabc"), "base58 is case-sensitive")
}
