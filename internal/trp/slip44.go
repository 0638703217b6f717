package trp

// coinTypes are the SLIP-0044 coin types of the native assets of the networks the enclave
// knows (internal/network): the only assets a TRP inquiry names by slip0044. A token on
// another chain's network (USDT on Ethereum) has no coin type of its own; TRP names those by
// DTI, which the enclave does not read yet.
var coinTypes = map[string]int{
	"BTC": 0, "LTC": 2, "DOGE": 3, "DASH": 5, "ETH": 60, "ATOM": 118, "ZEC": 133, "XRP": 144, "BCH": 145,
	"XLM": 148, "EOS": 194, "TRX": 195, "ALGO": 283, "XTZ": 1729, "SOL": 501, "ADA": 1815,
	"MATIC": 966, "BNB": 714, "AVAX": 9000, "WAVES": 5741564, "XCH": 8444,
}

// CoinType returns the SLIP-0044 coin type of a native asset's canonical symbol.
func CoinType(symbol string) (int, bool) {
	n, ok := coinTypes[symbol]
	return n, ok
}

// Symbol returns the canonical symbol of a SLIP-0044 coin type the enclave knows.
func Symbol(coinType int) (string, bool) {
	for s, n := range coinTypes {
		if n == coinType {
			return s, true
		}
	}
	return "", false
}
