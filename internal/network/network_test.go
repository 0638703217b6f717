package network

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAssetsKeepChainalysisSpelling(t *testing.T) {
	t.Parallel()
	r := Default()
	for in, want := range map[string]string{"btc": "BTC", "CDAI": "cDAI", "susd": "sUSD", "ethlend": "ETHLend", " usdt ": "USDT"} {
		a, ok := r.Asset(in)
		require.True(t, ok, in)
		require.Equal(t, want, a.Symbol, in)
	}
	_, ok := r.Asset("NOT-A-COIN")
	require.False(t, ok)
}

func TestResolve(t *testing.T) {
	t.Parallel()
	r := Default()
	asset := func(s string) Asset { a, ok := r.Asset(s); require.True(t, ok); return a }
	cases := []struct {
		asset, named, want, err string
	}{
		{"BTC", "", "BITCOIN", ""},
		{"ETH", "ethereum", "ETHEREUM", ""},
		{"LINK", "", "ETHEREUM", ""},
		{"BCH", "bitcoin cash", "BITCOIN_CASH", ""},
		{"BNB", "Binance_Smart_Chain", "BSC", ""},
		{"USDT", "tron", "TRON", ""},
		{"USDT", "", "", "several networks"},
		{"USDC", "Bitcoin", "", "does not exist on network BITCOIN"},
		{"BTC", "Ethereum", "", "does not exist"},
		{"ETH", "Atlantis", "", "not supported"},
	}
	for _, c := range cases {
		n, err := r.Resolve(asset(c.asset), c.named)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, "%s on %q", c.asset, c.named)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, c.want, n.Name, "%s on %q", c.asset, c.named)
	}
}

func TestTransferReference(t *testing.T) {
	t.Parallel()
	r := Default()
	net := func(s string) Network { n, ok := r.Network(s); require.True(t, ok); return n }
	vout := 3
	ref := func(n, hash, addr string, v *int) string {
		s, err := net(n).TransferReference(hash, addr, v)
		require.NoError(t, err)
		return s
	}
	require.Equal(t, "0xabc:0x3d21", ref("ETHEREUM", "0xabc", "0x3d21", nil))
	require.Equal(t, "9022:1H7a", ref("BITCOIN", "9022", "1H7a", &vout), "the address wins when known")
	require.Equal(t, "9022:3", ref("BITCOIN", "9022", "", &vout), "UTXO networks fall back to the output index")
	require.Equal(t, "abcd", ref("STELLAR", "abcd", "GABC", nil), "hash-only networks")
	_, err := net("ETHEREUM").TransferReference("0xabc", "", &vout)
	require.Error(t, err, "account networks need the address")
	_, err = net("BITCOIN").TransferReference("", "1H7a", nil)
	require.Error(t, err)
}
