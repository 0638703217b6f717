package kytsim

import (
	"fmt"
	"regexp"
	"strings"
)

// Category is a Chainalysis entity category with its KYT category id.
type Category struct {
	ID   int
	Name string
}

// The categories the sandbox knows. Ids 1 and 3 are those of the KYT guide's examples.
var (
	CatChildAbuse         = Category{1, "child abuse material"}
	CatDarknet            = Category{2, "darknet market"}
	CatSanctioned         = Category{3, "sanctioned entity"}
	CatScam               = Category{4, "scam"}
	CatStolenFunds        = Category{5, "stolen funds"}
	CatRansomware         = Category{6, "ransomware"}
	CatTerroristFinancing = Category{7, "terrorist financing"}
	CatMixing             = Category{8, "mixing"}
	CatHighRiskExchange   = Category{9, "high risk exchange"}
	CatGambling           = Category{10, "gambling"}
	CatHighRiskJuris      = Category{11, "high risk jurisdiction"}
	CatNoKYCExchange      = Category{12, "no kyc exchange"}
	CatExchange           = Category{13, "exchange"}
	CatDEX                = Category{14, "decentralized exchange"}
)

// Rule is one KYT alert rule: exposure to Category in Direction of more than MinUSD raises
// an alert of Level.
type Rule struct {
	Category  Category
	Direction string // "sent", "received" or "" for both
	Exposure  string // DIRECT or INDIRECT
	MinUSD    int
	Level     string
}

// Text is the rule as KYT writes it: ">$0 received directly from sanctioned entity".
func (r Rule) Text(direction string) string {
	how := "directly"
	if r.Exposure == "INDIRECT" {
		how = "indirectly"
	}
	if direction == "sent" {
		return fmt.Sprintf(">$%d sent %s to %s", r.MinUSD, how, r.Category.Name)
	}
	return fmt.Sprintf(">$%d received %s from %s", r.MinUSD, how, r.Category.Name)
}

// Rules are the sandbox's alert rules, in the spirit of KYT's default rule set.
var Rules = []Rule{
	{CatSanctioned, "", "DIRECT", 0, "SEVERE"},
	{CatSanctioned, "", "INDIRECT", 1000, "HIGH"},
	{CatChildAbuse, "", "DIRECT", 0, "SEVERE"},
	{CatTerroristFinancing, "", "DIRECT", 0, "SEVERE"},
	{CatRansomware, "", "DIRECT", 0, "SEVERE"},
	{CatDarknet, "sent", "DIRECT", 100, "HIGH"},
	{CatDarknet, "received", "DIRECT", 0, "HIGH"},
	{CatStolenFunds, "", "DIRECT", 0, "HIGH"},
	{CatScam, "", "DIRECT", 0, "HIGH"},
	{CatMixing, "", "DIRECT", 0, "HIGH"},
	{CatHighRiskJuris, "", "DIRECT", 0, "HIGH"},
	{CatHighRiskJuris, "", "INDIRECT", 0, "HIGH"},
	{CatHighRiskExchange, "", "DIRECT", 0, "MEDIUM"},
	{CatNoKYCExchange, "", "DIRECT", 0, "LOW"},
	{CatGambling, "", "DIRECT", 1000, "LOW"},
}

// Entity is what Chainalysis knows about an address: its cluster, its category and the
// service name an alert carries.
type Entity struct {
	Address  string   `json:"address"`
	Cluster  string   `json:"cluster"`
	Category Category `json:"-"`
	// CategoryName is Category.Name, for JSON listings.
	CategoryName string `json:"category"`
	// Service is the alert's "service": the address identification where there is one, else
	// the cluster name; empty (null) for indirect exposure.
	Service  string `json:"service"`
	Exposure string `json:"exposureType"`
	Source   string `json:"source"`
}

// KnownAddresses is every address the reference documents name, with what they say of it.
var KnownAddresses = []Entity{
	{Address: "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1", Cluster: "OFAC SDN Lazarus Group 2022-04-22", Category: CatSanctioned,
		Service: "OFAC SDN Lazarus Group 2022-04-22", Source: "Address Screening / Entities API examples"},
	{Address: "0x098B716B8Aaf21512996dC57EB0615e2383E2f96", Cluster: "OFAC SDN Lazarus Group 2022-04-22", Category: CatSanctioned,
		Service: "OFAC SDN Lazarus Group 2022-04-22", Source: "Entities API: OFAC SDN Lazarus Group designation"},
	{Address: "0xa0e1c89Ef1a489c9C7dE96311eD5Ce5D32c20E4B", Cluster: "OFAC SDN Lazarus Group 2022-04-22", Category: CatSanctioned,
		Service: "OFAC SDN Lazarus Group 2022-04-22", Source: "Entities API: OFAC SDN Lazarus Group designation"},
	{Address: "0x3Cffd56B47B7b41c56258D9C7731ABaDc360E073", Cluster: "OFAC SDN Lazarus Group 2022-04-22", Category: CatSanctioned,
		Service: "OFAC SDN Lazarus Group 2022-04-22", Source: "Entities API: OFAC SDN Lazarus Group designation"},
	{Address: "0x35fB6f6DB4fb05e6A4cE86f2C93691425626d4b1", Cluster: "MOFA JP Lazarus Group 2022-12-12", Category: CatSanctioned,
		Service: "MOFA JP Lazarus Group 2022-12-12", Source: "Entities API: MOFA JP Lazarus Group designation"},
	{Address: "0xF7B31119c2682c88d88D455dBb9d5932c65Cf1bE", Cluster: "MOFA JP Lazarus Group 2022-12-12", Category: CatSanctioned,
		Service: "MOFA JP Lazarus Group 2022-12-12", Source: "Entities API: MOFA JP Lazarus Group designation"},
	{Address: "0x3e37627dEAA754090fBFbb8bd226c1CE66D255e9", Cluster: "MOFA JP Lazarus Group 2022-12-12", Category: CatSanctioned,
		Service: "MOFA JP Lazarus Group 2022-12-12", Source: "Entities API: MOFA JP Lazarus Group designation"},
	{Address: "0x08723392Ed15743cc38513C4925f5e6be5c17243", Cluster: "MOFA JP Lazarus Group 2022-12-12", Category: CatSanctioned,
		Service: "MOFA JP Lazarus Group 2022-12-12", Source: "Entities API: MOFA JP Lazarus Group designation"},
	{Address: "LaizKtS5DUhPuP1nTQcc83MS7HwK6vk85z", Cluster: "Gatecoin.com", Category: CatSanctioned,
		Service: "OFAC SDN Guanghua Zheng", Source: "KYT v1 withdrawal address example (Chainalysis identification)"},
	{Address: "bb3fd383d1c5540e52ef0a7bcb9433375793aeaf", Cluster: "SimpleSwap.io", Category: CatHighRiskExchange,
		Service: "HIGH RISK EXCHANGE: SimpleSwap.io bb3fd383d1c5540e52ef0a7bcb9433375793aeaf", Source: "VerifyVASP CHAINALYSIS_KYT_RESULT example"},
	{Address: "1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH", Cluster: "Child Abuse", Category: CatChildAbuse,
		Service: "CHILD ABUSE MATERIAL: Child Abuse 1MRcUDjinYQ3sMkN29ifMwY3oo7aZuuriH", Source: "KYT v2 guide withdrawal attempt example"},
	{Address: "32PUt3ijeewVN2jjoYJqP9ReDfjhqHW3EL", Cluster: "Coinbase.com", Category: CatScam,
		Service: "SCAM: Alpha-Cash.com 32PUt3ijeewVN2jjoYJqP9ReDfjhqHW3EL", Source: "Address Screening / Entities API examples"},
	{Address: "1DP38CC2kf6ewUDaaVd9nBfuAD8SP15g2T", Cluster: "Silk Road Marketplace", Category: CatDarknet,
		Service: "Silk Road Marketplace", Source: "KYT v1 alerts example"},
	{Address: "12gzta6sTonaMy5mozWhStMMSet1FxFA7L", Cluster: "Darknet", Category: CatDarknet,
		Service: "Darknet", Source: "KYT v1 withdrawal address example (custom address)"},
	{Address: "1LRtBLSGLnhnhXiWenZWYkWZJnxZo282Ug", Cluster: "Fraud", Category: CatScam,
		Service: "Fraud", Source: "KYT v1 withdrawal address example (custom address)"},
	{Address: "0x2337bBCD5766Bf2A9462D493E9A459b60b41B7f2", Category: CatHighRiskJuris, Exposure: "INDIRECT",
		Source: "Address Screening example: > 49% exposure to high risk jurisdiction"},
	{Address: "1Je3RohZT6mH1AofjcjMJXgbVgKrJNVohD", Cluster: "Coinbase.com", Category: CatExchange,
		Service: "Coinbase.com", Source: "Address Screening example: an address owned by an exchange"},
	{Address: "1MCPcGbnrv4Uv9HcrjoQwzJaEFGrwzE6Pk", Cluster: "Coinbase", Category: CatExchange,
		Service: "Coinbase", Source: "KYT v1 withdrawal address example"},
	{Address: "0x512011c2573e0EcBd66be051b9A1C0fd097F2092", Cluster: "Uniswap V3: WETH 0xc02aaa - CMB 0xc6db55 (0.3%)", Category: CatDEX,
		Service: "Uniswap V3: WETH 0xc02aaa - CMB 0xc6db55 (0.3%)", Source: "Entities API liquidity pool example"},
}

// knownTx is what the sandbox's "chain" knows of a transaction: who sent it, and its output.
type knownTx struct {
	Sender        Entity
	OutputAddress string
	AssetAmount   string
	Timestamp     string
}

// KnownTransactions are the transactions the reference documents name. The KYT guide's
// received BTC transfer came from an OFAC-designated sender.
var knownTransactions = map[string]knownTx{
	"0f6d4e6b9bddbe3dacb043012ffa029d706867e4749600f1d048aae9d1a66011": {
		Sender: Entity{Cluster: "OFAC SDN Fujing Zheng 2019-08-21", Category: CatSanctioned,
			Service: "OFAC SDN Fujing Zheng 2019-08-21", Source: "KYT v2 guide transfer alert example"},
		OutputAddress: "3A62vpSwwLM88DAjE8VwnX9gfqSpitUxg7", AssetAmount: "0.0000867", Timestamp: "2021-01-12T06:11:30.000+00:00",
	},
	"b765440e872ab6e2521694d10465415bda4adf8ed7fc2fdafb6d39bd17c5fddf": {
		OutputAddress: "1DP38CC2kf6ewUDaaVd9nBfuAD8SP15g2T", Timestamp: "2011-06-18T08:22:21.000+00:00",
	},
}

// riskyCategories are what a "risky fraction" of unknown addresses is given, by hash.
var riskyCategories = []Category{CatSanctioned, CatDarknet, CatScam, CatHighRiskExchange, CatMixing, CatStolenFunds}

var evmAddress = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{40}$`)

// addressKey folds the spellings of one address: EVM addresses are case-insensitive and may
// lack 0x; everything else (base58) is case-sensitive.
func addressKey(a string) string {
	a = strings.TrimSpace(a)
	if evmAddress.MatchString(a) {
		return strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(a, "0x"), "0X"))
	}
	return a
}

var (
	evmStrict = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)
	btcLike   = regexp.MustCompile(`^([13][a-km-zA-HJ-NP-Z1-9]{25,34}|(bc1|tb1)[a-z0-9]{8,87})$`)
)

// validAddress checks the address formats KYT validates for mature assets (an illegal format
// is a 400); other networks' addresses are accepted as they come.
func validAddress(n simNetwork, address string) bool {
	switch n.Name {
	case "Ethereum", "Polygon", "Binance_Smart_Chain", "Avalanche":
		return evmStrict.MatchString(address)
	case "Bitcoin":
		return btcLike.MatchString(address)
	}
	return strings.TrimSpace(address) != ""
}

// simNetwork is a network as Chainalysis KYT names it, with its transfer reference format.
type simNetwork struct {
	Name     string // as KYT writes it in requests
	HashOnly bool   // transferReference is the bare transaction hash
	UTXO     bool   // transferReference may end in an output index
}

var networks = []simNetwork{
	{Name: "Bitcoin", UTXO: true}, {Name: "Ethereum"}, {Name: "Tron"}, {Name: "Litecoin", UTXO: true},
	{Name: "Bitcoin_Cash", UTXO: true}, {Name: "Dash", UTXO: true}, {Name: "Zcash", UTXO: true},
	{Name: "Dogecoin", UTXO: true}, {Name: "Cardano", UTXO: true}, {Name: "XRPL"}, {Name: "EOS"},
	{Name: "Algorand"}, {Name: "Stellar", HashOnly: true}, {Name: "Cosmos", HashOnly: true},
	{Name: "Waves", HashOnly: true}, {Name: "Tezos"}, {Name: "Solana"}, {Name: "Polygon"},
	{Name: "Binance_Smart_Chain"}, {Name: "Avalanche"}, {Name: "Chia"},
}

func findNetwork(name string) (simNetwork, bool) {
	for _, n := range networks {
		if strings.EqualFold(n.Name, strings.TrimSpace(name)) {
			return n, true
		}
	}
	return simNetwork{}, false
}

// assets are the assets GET /v1/assets lists, with fixed USD prices so usdAmount is exact and
// repeatable. BTC and ETH are the prices of the reference examples (1 BTC = 29877.50 in the KYT
// guide, 1 ETH = 1820.17 in the VerifyVASP example); XCH is the guide's assetPrice.
var assets = map[string]struct{ Name, Price string }{
	"BTC":   {"Bitcoin", "29877.50"},
	"ETH":   {"Ethereum", "1820.17"},
	"WBTC":  {"Wrapped Bitcoin", "29877.50"},
	"WETH":  {"Wrapped Ether", "1820.17"},
	"USDT":  {"Tether", "1.00"},
	"USDC":  {"USD Coin", "1.00"},
	"DAI":   {"Dai", "1.00"},
	"BUSD":  {"Binance USD", "1.00"},
	"TUSD":  {"TrueUSD", "1.00"},
	"PAX":   {"Paxos Standard", "1.00"},
	"TRX":   {"TRON", "0.08"},
	"LTC":   {"Litecoin", "70.00"},
	"BCH":   {"Bitcoin Cash", "230.00"},
	"DASH":  {"Dash", "30.00"},
	"ZEC":   {"Zcash", "30.00"},
	"DOGE":  {"Dogecoin", "0.07"},
	"ADA":   {"Cardano", "0.30"},
	"XRP":   {"XRP", "0.50"},
	"EOS":   {"EOS", "0.80"},
	"ALGO":  {"Algorand", "0.15"},
	"XLM":   {"Stellar Lumens", "0.12"},
	"ATOM":  {"Cosmos", "9.00"},
	"WAVES": {"WAVES", "2.00"},
	"XTZ":   {"Tezos", "0.80"},
	"SOL":   {"Solana", "20.00"},
	"MATIC": {"Matic Network", "0.90"},
	"BNB":   {"Binance Coin", "310.00"},
	"AVAX":  {"Avalanche", "14.00"},
	"XCH":   {"Chia", "69.09"},
	"LINK":  {"Chainlink", "6.50"},
	"UNI":   {"Uniswap", "5.00"},
	"MKR":   {"Maker", "1200.00"},
	"COMP":  {"Compound", "50.00"},
}
