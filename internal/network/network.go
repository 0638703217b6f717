// Package network is the registry of blockchain networks and assets the enclave knows: how a
// VASP may spell them, how Chainalysis KYT spells them, and how a transfer on each network is
// referenced. It is one data table in code so that adding a network is a one-line change.
package network

import (
	"bufio"
	_ "embed"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// RefFormat is how Chainalysis KYT identifies one transfer inside a transaction on a network
// (the "Transfer format reference" column of the KYT asset table).
type RefFormat string

// The transfer reference formats of the KYT asset table.
const (
	// RefHashAddress is "<transaction hash>:<output address>" (account-based networks).
	RefHashAddress RefFormat = "HASH_ADDRESS"
	// RefUTXO is "<transaction hash>:<output address>" or "<transaction hash>:<output index>".
	RefUTXO RefFormat = "UTXO"
	// RefHash is the bare transaction hash.
	RefHash RefFormat = "HASH"
)

// Network is one blockchain network as the enclave stores it and as Chainalysis names it.
type Network struct {
	// Name is the canonical, upper-case name stored and returned by the enclave (ETHEREUM).
	Name string
	// Chainalysis is the value sent as "network" to the KYT v2 API (Ethereum).
	Chainalysis string
	// Native is the symbol of the network's own coin.
	Native string
	// RefFormat is how a transfer on this network is referenced.
	RefFormat RefFormat
}

// networks is the registry. Chainalysis names follow the KYT v2 examples ("Bitcoin", "Chia")
// and its published network list for the others.
var networks = []Network{
	{Name: "BITCOIN", Chainalysis: "Bitcoin", Native: "BTC", RefFormat: RefUTXO},
	{Name: "ETHEREUM", Chainalysis: "Ethereum", Native: "ETH", RefFormat: RefHashAddress},
	{Name: "TRON", Chainalysis: "Tron", Native: "TRX", RefFormat: RefHashAddress},
	{Name: "LITECOIN", Chainalysis: "Litecoin", Native: "LTC", RefFormat: RefUTXO},
	{Name: "BITCOIN_CASH", Chainalysis: "Bitcoin_Cash", Native: "BCH", RefFormat: RefUTXO},
	{Name: "DASH", Chainalysis: "Dash", Native: "DASH", RefFormat: RefUTXO},
	{Name: "ZCASH", Chainalysis: "Zcash", Native: "ZEC", RefFormat: RefUTXO},
	{Name: "DOGECOIN", Chainalysis: "Dogecoin", Native: "DOGE", RefFormat: RefUTXO},
	{Name: "CARDANO", Chainalysis: "Cardano", Native: "ADA", RefFormat: RefUTXO},
	{Name: "XRP", Chainalysis: "XRPL", Native: "XRP", RefFormat: RefHashAddress},
	{Name: "EOS", Chainalysis: "EOS", Native: "EOS", RefFormat: RefHashAddress},
	{Name: "ALGORAND", Chainalysis: "Algorand", Native: "ALGO", RefFormat: RefHashAddress},
	{Name: "STELLAR", Chainalysis: "Stellar", Native: "XLM", RefFormat: RefHash},
	{Name: "COSMOS", Chainalysis: "Cosmos", Native: "ATOM", RefFormat: RefHash},
	{Name: "WAVES", Chainalysis: "Waves", Native: "WAVES", RefFormat: RefHash},
	{Name: "TEZOS", Chainalysis: "Tezos", Native: "XTZ", RefFormat: RefHashAddress},
	{Name: "SOLANA", Chainalysis: "Solana", Native: "SOL", RefFormat: RefHashAddress},
	{Name: "POLYGON", Chainalysis: "Polygon", Native: "MATIC", RefFormat: RefHashAddress},
	{Name: "BSC", Chainalysis: "Binance_Smart_Chain", Native: "BNB", RefFormat: RefHashAddress},
	{Name: "AVALANCHE", Chainalysis: "Avalanche", Native: "AVAX", RefFormat: RefHashAddress},
	{Name: "CHIA", Chainalysis: "Chia", Native: "XCH", RefFormat: RefHashAddress},
}

// multiNetwork lists the assets issued on several networks. A transfer of one of them cannot
// be screened until its network is known. The first network is not a default.
var multiNetwork = map[string][]string{
	"USDT": {"ETHEREUM", "TRON", "SOLANA", "POLYGON", "BSC", "AVALANCHE", "EOS", "ALGORAND"},
	"USDC": {"ETHEREUM", "SOLANA", "TRON", "POLYGON", "BSC", "AVALANCHE", "ALGORAND", "STELLAR"},
	"DAI":  {"ETHEREUM", "POLYGON", "BSC"},
	"BUSD": {"ETHEREUM", "BSC"},
}

// tokenHome is the network of an asset that is neither a network's native coin nor listed in
// multiNetwork: the KYT asset table's tokens are ERC-20.
const tokenHome = "ETHEREUM"

//go:embed assets.tsv
var assetsTSV string

// Asset is one asset symbol as Chainalysis writes it, with the networks it lives on.
type Asset struct {
	// Symbol is the canonical spelling (BTC, USDT, cDAI).
	Symbol string
	// Name is the asset's name in the KYT asset table.
	Name string
	// Networks are the canonical names of the networks the asset exists on; more than one
	// means the network must be named for a transfer to be screened.
	Networks []string
}

// MultiNetwork reports whether the asset exists on several networks.
func (a Asset) MultiNetwork() bool { return len(a.Networks) > 1 }

// Registry answers questions about networks and assets. The zero value is not usable; call
// Default.
type Registry struct {
	networks map[string]Network // by every accepted spelling, upper-cased
	assets   map[string]Asset   // by upper-cased symbol
}

// Default returns the registry built from the tables in this package.
func Default() *Registry {
	r := &Registry{networks: map[string]Network{}, assets: map[string]Asset{}}
	native := map[string]string{}
	for _, n := range networks {
		for _, alias := range []string{n.Name, n.Chainalysis} {
			r.networks[key(alias)] = n
		}
		native[n.Native] = n.Name
	}
	sc := bufio.NewScanner(strings.NewReader(assetsTSV))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		symbol, name, _ := strings.Cut(line, "\t")
		a := Asset{Symbol: symbol, Name: name}
		switch {
		case multiNetwork[symbol] != nil:
			a.Networks = multiNetwork[symbol]
		case native[symbol] != "":
			a.Networks = []string{native[symbol]}
		default:
			a.Networks = []string{tokenHome}
		}
		r.assets[strings.ToUpper(symbol)] = a
	}
	return r
}

// key folds the ways a network name is written ("Bitcoin Cash", "bitcoin-cash") into one.
func key(s string) string {
	s = strings.ToUpper(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "_", "-", "_").Replace(s)
}

// Network finds a network by its canonical or Chainalysis name, in any case.
func (r *Registry) Network(name string) (Network, bool) {
	n, ok := r.networks[key(name)]
	return n, ok
}

// Asset finds an asset by symbol, in any case.
func (r *Registry) Asset(symbol string) (Asset, bool) {
	a, ok := r.assets[strings.ToUpper(strings.TrimSpace(symbol))]
	return a, ok
}

// Networks lists the registered networks in name order.
func (r *Registry) Networks() []Network {
	out := make([]Network, len(networks))
	copy(out, networks)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ResolveError explains why an asset and a network do not make a screenable transfer; its
// message is safe to show to the VASP.
type ResolveError struct{ Msg string }

func (e *ResolveError) Error() string { return e.Msg }

// Resolve returns the network a transfer of asset travels on, given the network named by the
// caller (may be empty). It fails when the named network is unknown or does not carry the
// asset, and when the asset lives on several networks and none is named.
func (r *Registry) Resolve(a Asset, named string) (Network, error) {
	if named == "" {
		if a.MultiNetwork() {
			return Network{}, &ResolveError{Msg: fmt.Sprintf("asset %s exists on several networks (%s): network is required",
				a.Symbol, strings.Join(a.Networks, ", "))}
		}
		n, _ := r.Network(a.Networks[0])
		return n, nil
	}
	n, ok := r.Network(named)
	if !ok {
		return Network{}, &ResolveError{Msg: fmt.Sprintf("network %q is not supported", named)}
	}
	if !a.on(n.Name) {
		return Network{}, &ResolveError{Msg: fmt.Sprintf("asset %s does not exist on network %s", a.Symbol, n.Name)}
	}
	return n, nil
}

// on reports whether the asset may travel on the network. Tokens of the KYT table (no
// explicit list) are accepted on any network that is not a UTXO chain's, since bridged
// copies of ERC-20 tokens are common.
func (a Asset) on(network string) bool {
	for _, n := range a.Networks {
		if n == network {
			return true
		}
	}
	if len(a.Networks) == 1 && a.Networks[0] == tokenHome {
		for _, n := range networks {
			if n.Name == network {
				return n.RefFormat != RefUTXO && n.Native != a.Symbol
			}
		}
	}
	return false
}

// TransferReference builds the KYT transferReference of the transfer to (or from) address in
// transaction txHash, following the network's format. vout is used only on UTXO networks when
// no address is known.
func (n Network) TransferReference(txHash, address string, vout *int) (string, error) {
	switch {
	case txHash == "":
		return "", fmt.Errorf("transfer reference on %s: no transaction hash", n.Name)
	case n.RefFormat == RefHash:
		return txHash, nil
	case address != "":
		return txHash + ":" + address, nil
	case n.RefFormat == RefUTXO && vout != nil:
		return txHash + ":" + strconv.Itoa(*vout), nil
	default:
		return "", fmt.Errorf("transfer reference on %s: no output address", n.Name)
	}
}
