package network

import (
	"regexp"
	"strings"
)

// format is what addresses and transaction hashes look like on a network. The patterns check
// the shape (alphabet, prefix, length), not checksums: they are there to refuse what cannot be
// an address or a hash of the network (a typo, "not-an-address", an EVM address on TRON)
// before it is stored and screened, not to prove an address exists.
type format struct {
	address []*regexp.Regexp
	hash    *regexp.Regexp
}

const (
	base58 = `[1-9A-HJ-NP-Za-km-z]`
	hex64  = `^(0[xX])?[0-9a-fA-F]{64}$`
)

func re(s ...string) []*regexp.Regexp {
	out := make([]*regexp.Regexp, len(s))
	for i, p := range s {
		out[i] = regexp.MustCompile(p)
	}
	return out
}

var (
	evm = format{address: re(`^(0[xX])?[0-9a-fA-F]{40}$`), hash: regexp.MustCompile(hex64)}
	// formats by network name. EVM addresses may lack their 0x (the VerifyVASP page's example
	// does); bech32 addresses are accepted in either case, as their specification allows.
	formats = map[string]format{
		"ETHEREUM": evm, "POLYGON": evm, "BSC": evm, "AVALANCHE": evm,
		"BITCOIN":      {re(`^[13]`+base58+`{25,34}$`, `^(?i:bc1[02-9ac-hj-np-z]{11,87})$`), regexp.MustCompile(hex64)},
		"LITECOIN":     {re(`^[LM3]`+base58+`{26,33}$`, `^(?i:ltc1[02-9ac-hj-np-z]{11,87})$`), regexp.MustCompile(hex64)},
		"BITCOIN_CASH": {re(`^[13]`+base58+`{25,34}$`, `^(?i:(bitcoincash:)?[qp][02-9ac-hj-np-z]{41})$`), regexp.MustCompile(hex64)},
		"DASH":         {re(`^[X7]` + base58 + `{33}$`), regexp.MustCompile(hex64)},
		"ZCASH":        {re(`^t[13]`+base58+`{33}$`, `^zs1[02-9ac-hj-np-z]{75}$`), regexp.MustCompile(hex64)},
		"DOGECOIN":     {re(`^[DA9]` + base58 + `{25,34}$`), regexp.MustCompile(hex64)},
		"CARDANO":      {re(`^addr1[02-9ac-hj-np-z]{50,110}$`, `^(Ae2|DdzFF)`+base58+`{30,120}$`), regexp.MustCompile(hex64)},
		"TRON":         {re(`^T` + base58 + `{33}$`), regexp.MustCompile(hex64)},
		"XRP":          {re(`^r` + base58 + `{24,34}$`), regexp.MustCompile(hex64)},
		"EOS":          {re(`^[a-z1-5.]{1,12}$`), regexp.MustCompile(hex64)},
		"ALGORAND":     {re(`^[A-Z2-7]{58}$`), regexp.MustCompile(`^[A-Z2-7]{52}$`)},
		"STELLAR":      {re(`^G[A-Z2-7]{55}$`), regexp.MustCompile(hex64)},
		"COSMOS":       {re(`^cosmos1[02-9ac-hj-np-z]{38,58}$`), regexp.MustCompile(hex64)},
		"WAVES":        {re(`^3` + base58 + `{34}$`), regexp.MustCompile(`^` + base58 + `{32,44}$`)},
		"TEZOS":        {re(`^(tz[1-4]|KT1)` + base58 + `{33}$`), regexp.MustCompile(`^o` + base58 + `{50}$`)},
		"SOLANA":       {re(`^` + base58 + `{32,44}$`), regexp.MustCompile(`^` + base58 + `{64,90}$`)},
		"CHIA":         {re(`^xch1[02-9ac-hj-np-z]{58}$`), regexp.MustCompile(hex64)},
	}
)

// ValidAddress reports whether address can be an address on the network, exactly as written
// (it is stored, shown and sent to Chainalysis as written).
func (n Network) ValidAddress(address string) bool {
	f, ok := formats[n.Name]
	if !ok {
		return true // a network without a known format refuses nothing
	}
	for _, r := range f.address {
		if r.MatchString(address) {
			return true
		}
	}
	return false
}

// ValidTxHash reports whether hash can be a transaction hash (id) on the network.
func (n Network) ValidTxHash(hash string) bool {
	f, ok := formats[n.Name]
	return !ok || f.hash.MatchString(hash)
}

// Networks are the networks a transfer may be on, while its network is not known for sure.
type Networks []Network

// Candidates returns the networks a transfer of asset may be on: the named one when known,
// else every network of the asset.
func (r *Registry) Candidates(a Asset, named string) Networks {
	if n, ok := r.Network(named); ok && named != "" {
		return Networks{n}
	}
	var out Networks
	for _, name := range a.Networks {
		if n, ok := r.Network(name); ok {
			out = append(out, n)
		}
	}
	return out
}

// ValidAddress reports whether address can be an address on one of the networks.
func (ns Networks) ValidAddress(address string) bool {
	for _, n := range ns {
		if n.ValidAddress(address) {
			return true
		}
	}
	return false
}

// ValidTxHash reports whether hash can be a transaction hash on one of the networks.
func (ns Networks) ValidTxHash(hash string) bool {
	for _, n := range ns {
		if n.ValidTxHash(hash) {
			return true
		}
	}
	return false
}

// String names the networks for a message: "ETHEREUM", or "any of ETHEREUM, TRON".
func (ns Networks) String() string {
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.Name
	}
	if len(names) == 1 {
		return names[0]
	}
	return "any of " + strings.Join(names, ", ")
}

// SameTxHash reports whether two spellings name one transaction: hexadecimal hashes compare
// without case (and without a 0x), others exactly.
func SameTxHash(a, b string) bool {
	ha, hb := HexTxHash(a), HexTxHash(b)
	if ha != "" && hb != "" {
		return ha == hb
	}
	return a == b
}

// HexTxHash is the one spelling of a hexadecimal hash (or address) that SameTxHash compares:
// lower case without a 0x; "" when s is not hexadecimal (base58 and the like compare exactly).
// A list filtered by txHash finds the rows whose stored hash SameTxHash takes for the one asked.
func HexTxHash(s string) string { return hexHash(s) }

// SameAddress reports whether two spellings name one wallet: hexadecimal addresses compare
// without case (an EIP-55 checksum is only case) and without a 0x, others exactly.
func SameAddress(a, b string) bool { return SameTxHash(a, b) }

var hexOnly = regexp.MustCompile(`^(0[xX])?[0-9a-fA-F]+$`)

func hexHash(s string) string {
	if !hexOnly.MatchString(s) {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
}
