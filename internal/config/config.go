// Package config reads the enclave's configuration from its environment (DESIGN.md §8) in one
// place. Every value is typed and validated at start-up; every problem is reported at once,
// naming the variable; no secret is ever part of a message or a log line.
package config

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/travelrule/enclave/internal/retention"
	"github.com/travelrule/enclave/internal/seal"
	"github.com/travelrule/enclave/internal/validate"
)

// Defaults of the optional variables.
const (
	DefaultListenAddr = ":8080"
	DefaultKYTAPIURL  = "https://api.chainalysis.com/api/kyt"
	// DefaultRiskAPIURL is the Entities API (Address Screening) base URL.
	DefaultRiskAPIURL = "https://api.chainalysis.com/api/risk"
	// DefaultKYTMonitorInterval is how often alerts Chainalysis raises later are pulled in.
	DefaultKYTMonitorInterval = time.Minute
	// DefaultWorkers covers 1,000 assessments in flight: at 150 ms a Chainalysis call (two or
	// three calls an assessment) that is over 2,000 assessments/s, above a process's CPU ceiling.
	DefaultWorkers = 1000
	// DefaultCallbackWorkers covers 1,000 deliveries in flight: 200 callbacks/s to a receiver
	// that takes 5 s to answer.
	DefaultCallbackWorkers = 1000
	// DefaultVASPAPITimeout bounds one call of the VASP's own API: VerifyVASP gives Verify User 5 s.
	DefaultVASPAPITimeout = 5 * time.Second
	// DefaultVerificationTimeout is how long an originator waits for a result.
	DefaultVerificationTimeout = 15 * time.Minute
	// DefaultPeerWorkers is the messages to counterparties in flight.
	DefaultPeerWorkers = 100
	// DefaultPeerProbeInterval is how often the health of each counterparty is probed: a
	// counterparty that stops or returns shows so in GET /v1/vasps well within a minute.
	DefaultPeerProbeInterval = 20 * time.Second
	// DefaultHTTPReadTimeout bounds reading one request, headers and body: 1 MiB (the body
	// cap) arrives in it at 35 KiB/s.
	DefaultHTTPReadTimeout = 30 * time.Second
	// DefaultHTTPWriteTimeout bounds answering one request once it is read; a request with
	// Prefer: wait gets its wait on top.
	DefaultHTTPWriteTimeout = 30 * time.Second
	// DefaultHTTPMinBodyRate is the slowest a request body may arrive, in bytes per second
	// after a grace of a few seconds: a body trickled a byte at a time is cut off within
	// seconds, a 1 MiB body from a slow client still arrives.
	DefaultHTTPMinBodyRate = 16 << 10
)

// Peer is a counterparty enclave allowed to call the peer routes.
type Peer struct {
	VaspID string `json:"vaspId"`
	Name   string `json:"name"`
	URL    string `json:"url"`
	// Secret is the Standard Webhooks signing secret, "whsec_<base64>". Never logged. A TRP
	// counterparty needs none: mTLS authenticates both sides.
	Secret string `json:"secret"`
	// Protocol is how the counterparty is spoken to: "enclave" (the default, the peer routes
	// of DESIGN.md §12) or "trp" (OpenVASP's Travel Rule Protocol v3, §15), whose url is then
	// the counterparty's TRP inquiry endpoint.
	Protocol string `json:"protocol,omitempty"`
}

// Protocols a counterparty of the peers file may speak.
const (
	ProtocolEnclave = "enclave"
	ProtocolTRP     = "trp"
)

// TRP reports whether the counterparty speaks TRP.
func (p Peer) TRP() bool { return p.Protocol == ProtocolTRP }

// Config is the whole configuration. Secrets are kept in fields whose names end in Key,
// Keys, Token or Secret; LogValue leaves them out.
type Config struct {
	// DatabaseURL is the PostgreSQL DSN (DATABASE_URL). Required by serve and migrate.
	DatabaseURL string
	// ListenAddr is where serve listens (ENCLAVE_LISTEN_ADDR), default ":8080".
	ListenAddr string
	// VaspID is this VASP's id (ENCLAVE_VASP_ID). Required by serve.
	VaspID string
	// APIKeys are the keys accepted as "Authorization: Bearer <key>" (ENCLAVE_API_KEYS,
	// comma-separated). serve refuses to start without one.
	APIKeys []string
	// PeersFile is the JSON file of counterparty enclaves (ENCLAVE_PEERS_FILE); optional:
	// without it every peer request is refused.
	PeersFile string
	// Peers is the content of PeersFile.
	Peers []Peer
	// KYTAPIURL is the Chainalysis KYT base URL (CHAINALYSIS_KYT_API_URL), default
	// "https://api.chainalysis.com/api/kyt".
	KYTAPIURL string
	// KYTAPIKey is sent as the Token header (CHAINALYSIS_KYT_API_KEY). Without it the KYT route
	// answers UNSUPPORTED-RISK-ASSESSMENT saying KYT is not configured.
	KYTAPIKey string
	// RiskAPIURL is the Chainalysis Entities API (Address Screening) base URL
	// (CHAINALYSIS_RISK_API_URL), default "https://api.chainalysis.com/api/risk".
	RiskAPIURL string
	// RiskAPIKey is the Entities API's Token (CHAINALYSIS_RISK_API_KEY). Without it the address
	// screening route answers UNSUPPORTED-RISK-ASSESSMENT saying it is not configured. serve
	// needs at least one of the two Chainalysis keys.
	RiskAPIKey string
	// KYTMonitorInterval is how often the monitoring sync pulls in alerts KYT raised after an
	// assessment was processed (ENCLAVE_KYT_MONITOR_INTERVAL), default 1m; 0 turns it off.
	KYTMonitorInterval time.Duration
	// CallbackURL is where callbacks are POSTed (ENCLAVE_CALLBACK_URL).
	CallbackURL string
	// CallbackToken is sent as "Authorization: Bearer <token>" with each callback
	// (ENCLAVE_CALLBACK_TOKEN).
	CallbackToken string
	// CallbackSecret signs callbacks, "whsec_<base64>" (ENCLAVE_CALLBACK_SECRET).
	CallbackSecret string
	// CallbackOnRegistered also sends a callback when Chainalysis registers an assessment
	// (ENCLAVE_CALLBACK_ON_REGISTERED=true), default false: only terminal states.
	CallbackOnRegistered bool
	// ShutdownTimeout bounds the graceful shutdown (ENCLAVE_SHUTDOWN_TIMEOUT), default 20s.
	ShutdownTimeout time.Duration
	// KYTMaxAge is how long an assessment may take before it ends in ERROR KYT-TIMEOUT
	// (ENCLAVE_KYT_MAX_AGE), default 24h.
	KYTMaxAge time.Duration
	// KYTPollMaxInterval caps the wait between two summary polls (ENCLAVE_KYT_POLL_MAX_INTERVAL),
	// default 5m.
	KYTPollMaxInterval time.Duration
	// KYTRateLimit caps Chainalysis requests per second from this process
	// (ENCLAVE_KYT_RATE_LIMIT), default 0: no limit.
	KYTRateLimit float64
	// ChainalysisTimeout bounds one Chainalysis call (CHAINALYSIS_TIMEOUT), default 10s. A
	// call cut short is a transient failure, retried; the job deadline is derived from it.
	ChainalysisTimeout time.Duration
	// Workers is how many assessment jobs this process works at once (ENCLAVE_WORKERS),
	// default 1000. A job waiting on Chainalysis holds a goroutine, not a database connection,
	// so this is sized for Chainalysis's latency: rate × time per assessment, with room.
	Workers int
	// CallbackWorkers is how many callback deliveries this process makes at once
	// (ENCLAVE_CALLBACK_WORKERS), default 1000: deliveries have a lane of their own, so a slow
	// receiver never holds back screening, and a burst of screenings never starves deliveries.
	CallbackWorkers int
	// DataKeyset is the Tink AEAD keyset, as JSON, that seals the IVMS101 payloads at rest
	// (ENCLAVE_DATA_KEYSET, or read from the file ENCLAVE_DATA_KEYSET_FILE). Required by serve;
	// `enclave keyset new` makes one. A secret: never logged or quoted.
	DataKeyset string
	// DataKeysetFile is where DataKeyset was read from, if from a file.
	DataKeysetFile string
	// Retention is how long verifications and everything about them are kept
	// (ENCLAVE_RETENTION: days such as 1825d, or a Go duration); 0, the default, keeps them
	// forever.
	Retention time.Duration
	// PipelineConnections is the size of the connection pool the workers share
	// (ENCLAVE_PIPELINE_CONNECTIONS), default 8. The API has a pool of its own, so no number of
	// busy workers makes an accept wait for a connection, and the pipeline never has more
	// statements running in PostgreSQL than this.
	PipelineConnections int
	// VerifyUserURL is this VASP's Verify User API (ENCLAVE_VERIFY_USER_URL), asked about every
	// inbound verification. Unset: inbound verifications wait for
	// POST /v1/verifications/{uuid}/result, and a VERIFICATION_REQUEST callback says so.
	VerifyUserURL string
	// VerifyAccountURL is this VASP's Verify Account API (ENCLAVE_VERIFY_ACCOUNT_URL), asked
	// about each account check a counterparty sends. Unset: those checks answer ERROR /
	// UNSUPPORTED.
	VerifyAccountURL string
	// TxStatusURL is this VASP's Transaction Status API (ENCLAVE_TX_STATUS_URL), asked about
	// each tx inquiry a beneficiary sends. Unset: the enclave answers from the tx report and
	// error report it stores.
	TxStatusURL string
	// VASPAPITimeout bounds one call of the VASP's API (ENCLAVE_VASP_API_TIMEOUT), default 5s.
	// A synchronous check (account, tx inquiry) waits for its counterparty at most this plus 2s.
	VASPAPITimeout time.Duration
	// VASPName is this VASP's name as GET /v1/vasps/self shows it (ENCLAVE_VASP_NAME);
	// optional, default none.
	VASPName string
	// PeerProbeInterval is how often each counterparty's /healthz is probed for GET /v1/vasps
	// (ENCLAVE_PEER_PROBE_INTERVAL), default 20s; 0 turns the probe off (every counterparty
	// shows DOWN).
	PeerProbeInterval time.Duration
	// VerificationTimeout is how long an originator waits for the beneficiary VASP's result
	// before the verification is ERROR / REQUEST-TIMEOUT (ENCLAVE_VERIFICATION_TIMEOUT), default 15m.
	VerificationTimeout time.Duration
	// PeerWorkers is how many messages to counterparties, and questions to the VASP's API, this
	// process has in flight (ENCLAVE_PEER_WORKERS), default 100: a lane of their own.
	PeerWorkers int
	// HTTPMaxConns bounds the connections serve holds open at once (ENCLAVE_HTTP_MAX_CONNS);
	// one more is answered 503 and closed at once. Default 0: half the process's open-file
	// limit, at most 10,000 (httpserver.MaxConns), so that connections can never take the file
	// descriptors the database pools, Chainalysis and callbacks need.
	HTTPMaxConns int
	// HTTPMaxConnsPerClient bounds the connections from one IP address
	// (ENCLAVE_HTTP_MAX_CONNS_PER_CLIENT), so that one client cannot take them all. Default 0:
	// half of HTTPMaxConns.
	HTTPMaxConnsPerClient int
	// HTTPReadTimeout bounds reading one request, headers and body (ENCLAVE_HTTP_READ_TIMEOUT),
	// default 30s; headers alone have 5s.
	HTTPReadTimeout time.Duration
	// HTTPWriteTimeout bounds answering one request once it is read
	// (ENCLAVE_HTTP_WRITE_TIMEOUT), default 30s; a request with Prefer: wait gets its wait on top,
	// so its answer is never cut off.
	HTTPWriteTimeout time.Duration
	// HTTPMinBodyRate is the slowest, in bytes per second, a request body may arrive after its
	// first 5 seconds (ENCLAVE_HTTP_MIN_BODY_RATE), default 16384: a trickled body is cut off
	// in seconds, not at HTTPReadTimeout.
	HTTPMinBodyRate int
	// TRPListenAddr is where the TRP listener serves inbound inquiries and the callbacks of
	// TRP transfers (ENCLAVE_TRP_LISTEN_ADDR); unset, the enclave speaks no TRP.
	TRPListenAddr string
	// TRPURL is the base URL counterparties reach the TRP listener at (ENCLAVE_TRP_URL):
	// Travel Addresses and callback URLs name it. Required with TRPListenAddr.
	TRPURL string
	// TRPTLSCert, TRPTLSKey and TRPTLSCA are PEM files (ENCLAVE_TRP_TLS_CERT, _KEY, _CA): our
	// certificate and key, served to and presented to counterparties, and the CA that signs
	// theirs. TRP v3 requires mTLS both ways; all three are required unless TRPInsecure.
	TRPTLSCert, TRPTLSKey, TRPTLSCA string
	// TRPInsecure allows plain HTTP for TRP (ENCLAVE_TRP_INSECURE=1), default false: only when
	// the listener, ENCLAVE_TRP_URL and every TRP counterparty are on loopback (dev, tests).
	TRPInsecure bool

	problems []string
}

// Load reads every variable through lookup (os.Getenv in production, a map in tests). Format
// problems are kept and reported by Validate together with missing required values.
func Load(lookup func(string) string) Config {
	c := Config{
		DatabaseURL:        strings.TrimSpace(lookup("DATABASE_URL")),
		ListenAddr:         or(lookup("ENCLAVE_LISTEN_ADDR"), DefaultListenAddr),
		VaspID:             strings.TrimSpace(lookup("ENCLAVE_VASP_ID")),
		PeersFile:          strings.TrimSpace(lookup("ENCLAVE_PEERS_FILE")),
		KYTAPIURL:          strings.TrimRight(or(lookup("CHAINALYSIS_KYT_API_URL"), DefaultKYTAPIURL), "/"),
		KYTAPIKey:          strings.TrimSpace(lookup("CHAINALYSIS_KYT_API_KEY")),
		RiskAPIURL:         strings.TrimRight(or(lookup("CHAINALYSIS_RISK_API_URL"), DefaultRiskAPIURL), "/"),
		RiskAPIKey:         strings.TrimSpace(lookup("CHAINALYSIS_RISK_API_KEY")),
		KYTMonitorInterval: DefaultKYTMonitorInterval,
		CallbackURL:        strings.TrimSpace(lookup("ENCLAVE_CALLBACK_URL")),
		CallbackToken:      strings.TrimSpace(lookup("ENCLAVE_CALLBACK_TOKEN")),
		CallbackSecret:     strings.TrimSpace(lookup("ENCLAVE_CALLBACK_SECRET")),
		ShutdownTimeout:    20 * time.Second,
		KYTMaxAge:          24 * time.Hour,
		KYTPollMaxInterval: 5 * time.Minute,
		ChainalysisTimeout: 10 * time.Second,
		Workers:            DefaultWorkers,
		CallbackWorkers:    DefaultCallbackWorkers,

		PipelineConnections: 8,
		VerifyUserURL:       strings.TrimSpace(lookup("ENCLAVE_VERIFY_USER_URL")),
		VerifyAccountURL:    strings.TrimSpace(lookup("ENCLAVE_VERIFY_ACCOUNT_URL")),
		TxStatusURL:         strings.TrimSpace(lookup("ENCLAVE_TX_STATUS_URL")),
		VASPAPITimeout:      DefaultVASPAPITimeout,
		VASPName:            strings.TrimSpace(lookup("ENCLAVE_VASP_NAME")),
		PeerProbeInterval:   DefaultPeerProbeInterval,
		VerificationTimeout: DefaultVerificationTimeout,
		PeerWorkers:         DefaultPeerWorkers,
		HTTPReadTimeout:     DefaultHTTPReadTimeout,
		HTTPWriteTimeout:    DefaultHTTPWriteTimeout,
		HTTPMinBodyRate:     DefaultHTTPMinBodyRate,
	}
	for _, k := range strings.Split(lookup("ENCLAVE_API_KEYS"), ",") {
		if k = strings.TrimSpace(k); k != "" {
			c.APIKeys = append(c.APIKeys, k)
		}
	}
	if c.VaspID != "" && !validate.VASPID(c.VaspID) {
		c.problem("ENCLAVE_VASP_ID: must be %s, got %s", validate.VASPIDRule, validate.Quote(c.VaspID))
	}
	c.duration(lookup, "ENCLAVE_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	c.duration(lookup, "ENCLAVE_KYT_MAX_AGE", &c.KYTMaxAge)
	c.duration(lookup, "ENCLAVE_KYT_POLL_MAX_INTERVAL", &c.KYTPollMaxInterval)
	if v := strings.TrimSpace(lookup("ENCLAVE_KYT_RATE_LIMIT")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 {
			c.problem("ENCLAVE_KYT_RATE_LIMIT: want requests per second, 0 or more, got %q", v)
		} else {
			c.KYTRateLimit = f
		}
	}
	c.duration(lookup, "CHAINALYSIS_TIMEOUT", &c.ChainalysisTimeout)
	if v := strings.TrimSpace(lookup("ENCLAVE_KYT_MONITOR_INTERVAL")); v == "0" {
		c.KYTMonitorInterval = 0
	} else {
		c.duration(lookup, "ENCLAVE_KYT_MONITOR_INTERVAL", &c.KYTMonitorInterval)
	}
	c.count(lookup, "ENCLAVE_WORKERS", 10000, &c.Workers)
	c.count(lookup, "ENCLAVE_CALLBACK_WORKERS", 10000, &c.CallbackWorkers)
	c.count(lookup, "ENCLAVE_PIPELINE_CONNECTIONS", 1000, &c.PipelineConnections)
	c.count(lookup, "ENCLAVE_PEER_WORKERS", 10000, &c.PeerWorkers)
	c.count(lookup, "ENCLAVE_HTTP_MAX_CONNS", 1<<20, &c.HTTPMaxConns)
	c.count(lookup, "ENCLAVE_HTTP_MAX_CONNS_PER_CLIENT", 1<<20, &c.HTTPMaxConnsPerClient)
	c.duration(lookup, "ENCLAVE_HTTP_READ_TIMEOUT", &c.HTTPReadTimeout)
	c.duration(lookup, "ENCLAVE_HTTP_WRITE_TIMEOUT", &c.HTTPWriteTimeout)
	c.count(lookup, "ENCLAVE_HTTP_MIN_BODY_RATE", 1<<30, &c.HTTPMinBodyRate)
	c.duration(lookup, "ENCLAVE_VASP_API_TIMEOUT", &c.VASPAPITimeout)
	if v := strings.TrimSpace(lookup("ENCLAVE_PEER_PROBE_INTERVAL")); v == "0" {
		c.PeerProbeInterval = 0
	} else {
		c.duration(lookup, "ENCLAVE_PEER_PROBE_INTERVAL", &c.PeerProbeInterval)
	}
	c.duration(lookup, "ENCLAVE_VERIFICATION_TIMEOUT", &c.VerificationTimeout)
	if v := strings.TrimSpace(lookup("ENCLAVE_CALLBACK_ON_REGISTERED")); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			c.problem("ENCLAVE_CALLBACK_ON_REGISTERED: want true or false, got %q", v)
		}
		c.CallbackOnRegistered = b
	}
	for name, v := range map[string]string{"CHAINALYSIS_KYT_API_URL": c.KYTAPIURL, "CHAINALYSIS_RISK_API_URL": c.RiskAPIURL} {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.problem("%s: want an http(s) URL, got %q", name, redactURL(v))
		}
	}
	if c.CallbackURL != "" {
		if u, err := url.Parse(c.CallbackURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.problem("ENCLAVE_CALLBACK_URL: want an http(s) URL, got %q", redactURL(c.CallbackURL))
		}
	}
	for _, u := range []struct{ name, api, value string }{{"ENCLAVE_VERIFY_USER_URL", "Verify User", c.VerifyUserURL},
		{"ENCLAVE_VERIFY_ACCOUNT_URL", "Verify Account", c.VerifyAccountURL}, {"ENCLAVE_TX_STATUS_URL", "Transaction Status", c.TxStatusURL}} {
		if u.value != "" && !httpURL(u.value) {
			c.problem("%s: want an http(s) URL of the VASP's %s API, got %q", u.name, u.api, redactURL(u.value))
		}
	}
	if c.CallbackSecret != "" && !validSecret(c.CallbackSecret) {
		c.problem("ENCLAVE_CALLBACK_SECRET: want whsec_ followed by base64 (the value is not shown)")
	}
	if c.PeersFile != "" {
		c.loadPeers()
	}
	c.loadTRP(lookup)
	c.loadKeyset(lookup)
	if v := strings.TrimSpace(lookup("ENCLAVE_RETENTION")); v != "" {
		d, err := retention.ParsePeriod(v)
		if err != nil {
			c.problem("ENCLAVE_RETENTION: %v", err)
		}
		c.Retention = d
	}
	return c
}

func (c *Config) loadKeyset(lookup func(string) string) {
	c.DataKeyset = strings.TrimSpace(lookup("ENCLAVE_DATA_KEYSET"))
	c.DataKeysetFile = strings.TrimSpace(lookup("ENCLAVE_DATA_KEYSET_FILE"))
	name := "ENCLAVE_DATA_KEYSET"
	switch {
	case c.DataKeyset != "" && c.DataKeysetFile != "":
		c.problem("ENCLAVE_DATA_KEYSET and ENCLAVE_DATA_KEYSET_FILE: set one of them, not both")
		return
	case c.DataKeysetFile != "":
		name = "ENCLAVE_DATA_KEYSET_FILE"
		b, err := os.ReadFile(c.DataKeysetFile)
		if err != nil {
			c.problem("ENCLAVE_DATA_KEYSET_FILE: cannot read %s: %v", c.DataKeysetFile, errors.Unwrap(err))
			return
		}
		c.DataKeyset = strings.TrimSpace(string(b))
	case c.DataKeyset == "":
		return // required by serve: Validate says so
	}
	if _, err := seal.Load(c.DataKeyset); err != nil {
		c.problem("%s: %v (the value is not shown)", name, err)
	}
}

// Requirement names what a command cannot run without.
type Requirement int

// What each command needs.
const (
	NeedDatabase Requirement = 1 << iota
	NeedServe
)

// Validate reports every problem at once: format problems found by Load and the variables the
// command needs but did not get.
func (c Config) Validate(need Requirement) error {
	problems := append([]string(nil), c.problems...)
	if need&(NeedDatabase|NeedServe) != 0 && c.DatabaseURL == "" {
		problems = append(problems, "DATABASE_URL: required (a PostgreSQL DSN such as postgres://user:pass@localhost:5432/enclave?sslmode=disable)")
	}
	if need&NeedServe != 0 {
		if c.VaspID == "" {
			problems = append(problems, "ENCLAVE_VASP_ID: required (this VASP's id)")
		}
		if len(c.APIKeys) == 0 {
			problems = append(problems, "ENCLAVE_API_KEYS: required (at least one key for Authorization: Bearer)")
		}
		if c.KYTAPIKey == "" && c.RiskAPIKey == "" {
			problems = append(problems, "CHAINALYSIS_KYT_API_KEY or CHAINALYSIS_RISK_API_KEY: at least one is required (the KYT and the Address Screening API keys, sent as the Token header)")
		}
		if c.CallbackURL == "" {
			problems = append(problems, "ENCLAVE_CALLBACK_URL: required (where CHAINALYSIS_KYT_RESULT callbacks are POSTed)")
		}
		if c.CallbackSecret == "" {
			problems = append(problems, "ENCLAVE_CALLBACK_SECRET: required (whsec_<base64> secret that signs callbacks)")
		}
		if c.DataKeyset == "" && c.DataKeysetFile == "" {
			problems = append(problems, "ENCLAVE_DATA_KEYSET or ENCLAVE_DATA_KEYSET_FILE: required (the Tink keyset that encrypts personal data at rest; "+
				"make one with `enclave keyset new --out keyset.json` and keep it secret)")
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New("configuration: " + strings.Join(problems, "; "))
}

// Peer returns the counterparty enclave with the given VASP id.
func (c Config) Peer(vaspID string) (Peer, bool) {
	for _, p := range c.Peers {
		if p.VaspID == vaspID {
			return p, true
		}
	}
	return Peer{}, false
}

// LogValue lets the configuration be logged whole: secrets are reduced to whether they are set.
func (c Config) LogValue() slog.Value {
	peers := make([]string, len(c.Peers))
	for i, p := range c.Peers {
		peers[i] = p.VaspID
	}
	return slog.GroupValue(
		slog.String("listenAddr", c.ListenAddr),
		slog.String("vaspId", c.VaspID),
		slog.Int("apiKeys", len(c.APIKeys)),
		slog.String("database", redactURL(c.DatabaseURL)),
		slog.Any("peers", peers),
		slog.String("kytApiUrl", redactURL(c.KYTAPIURL)),
		slog.Bool("kytApiKeySet", c.KYTAPIKey != ""),
		slog.String("riskApiUrl", redactURL(c.RiskAPIURL)),
		slog.Bool("riskApiKeySet", c.RiskAPIKey != ""),
		slog.String("kytMonitorInterval", c.KYTMonitorInterval.String()),
		slog.String("callbackUrl", redactURL(c.CallbackURL)),
		slog.Bool("callbackTokenSet", c.CallbackToken != ""),
		slog.Bool("callbackSecretSet", c.CallbackSecret != ""),
		slog.Bool("callbackOnRegistered", c.CallbackOnRegistered),
		slog.Bool("dataKeysetSet", c.DataKeyset != ""),
		slog.String("retention", c.Retention.String()),
		slog.String("kytMaxAge", c.KYTMaxAge.String()),
		slog.String("kytPollMaxInterval", c.KYTPollMaxInterval.String()),
		slog.Float64("kytRateLimit", c.KYTRateLimit),
		slog.String("chainalysisTimeout", c.ChainalysisTimeout.String()),
		slog.Int("workers", c.Workers),
		slog.Int("callbackWorkers", c.CallbackWorkers),
		slog.Int("pipelineConnections", c.PipelineConnections),
		slog.String("verifyUserUrl", redactURL(c.VerifyUserURL)),
		slog.String("verifyAccountUrl", redactURL(c.VerifyAccountURL)),
		slog.String("txStatusUrl", redactURL(c.TxStatusURL)),
		slog.String("vaspApiTimeout", c.VASPAPITimeout.String()),
		slog.String("vaspName", c.VASPName),
		slog.String("peerProbeInterval", c.PeerProbeInterval.String()),
		slog.String("verificationTimeout", c.VerificationTimeout.String()),
		slog.Int("peerWorkers", c.PeerWorkers),
		slog.Int("httpMaxConns", c.HTTPMaxConns),
		slog.Int("httpMaxConnsPerClient", c.HTTPMaxConnsPerClient),
		slog.String("httpReadTimeout", c.HTTPReadTimeout.String()),
		slog.String("httpWriteTimeout", c.HTTPWriteTimeout.String()),
		slog.Int("httpMinBodyRate", c.HTTPMinBodyRate),
		slog.String("trpListenAddr", c.TRPListenAddr),
		slog.String("trpUrl", redactURL(c.TRPURL)),
		slog.Bool("trpMutualTLS", c.TRPEnabled() && !c.TRPInsecure),
	)
}

func (c *Config) loadPeers() {
	raw, err := os.ReadFile(c.PeersFile)
	if err != nil {
		c.problem("ENCLAVE_PEERS_FILE: cannot read %s: %v", c.PeersFile, errors.Unwrap(err))
		return
	}
	const shape = `{"peers":[{"vaspId","name","url","secret"}]}`
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		c.problem("ENCLAVE_PEERS_FILE: %s is not a JSON object of the form %s", c.PeersFile, shape)
		return
	}
	if bad := unknownKeys(top, "peers"); bad != "" {
		c.problem("ENCLAVE_PEERS_FILE: %s: unknown field %q; want %s (names are case-sensitive)", c.PeersFile, bad, shape)
		return
	}
	var list []json.RawMessage
	if err := json.Unmarshal(top["peers"], &list); err != nil || list == nil {
		c.problem("ENCLAVE_PEERS_FILE: peers must be an array of peers (an empty one to have none), got %s", kindOf(top["peers"]))
		return
	}
	seen := map[string]bool{}
	for i, item := range list {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(item, &fields); err != nil || fields == nil {
			c.problem("ENCLAVE_PEERS_FILE: peers[%d] must be an object %s", i, `{"vaspId","name","url","secret"}`)
			continue
		}
		if bad := unknownKeys(fields, "vaspId", "name", "url", "secret", "protocol"); bad != "" {
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].%s: unknown field; want vaspId, name, url, secret, protocol (names are case-sensitive)", i, bad)
			continue
		}
		var p Peer
		if err := json.Unmarshal(item, &p); err != nil {
			c.problem("ENCLAVE_PEERS_FILE: peers[%d]: vaspId, name, url, secret and protocol must be strings", i)
			continue
		}
		if p.Protocol == "" {
			p.Protocol = ProtocolEnclave
		}
		switch {
		case p.VaspID == "":
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].vaspId is required", i)
		case !validate.VASPID(p.VaspID):
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].vaspId %s must be printable ASCII without spaces, '/', '?', '#' or '%%', "+
				`at most 64 characters, not "." or ".." (it is sent as the X-Vasp-Id header and becomes a URL path segment)`, i, validate.Quote(p.VaspID))
		case seen[p.VaspID]:
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].vaspId %q is listed twice", i, p.VaspID)
		case c.VaspID != "" && p.VaspID == c.VaspID:
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].vaspId %q is our own VASP id (ENCLAVE_VASP_ID)", i, p.VaspID)
		case p.Protocol != ProtocolEnclave && p.Protocol != ProtocolTRP:
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].protocol: want %q (the default) or %q, got %s", i, ProtocolEnclave, ProtocolTRP, validate.Quote(p.Protocol))
		case p.TRP() && !httpURL(p.URL):
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].url: a TRP counterparty needs the URL of its TRP inquiry endpoint, got %q", i, redactURL(p.URL))
		case p.TRP() && p.Secret != "" && !validSecret(p.Secret):
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].secret must be whsec_ followed by base64 of at least 16 bytes (the value is not shown)", i)
		case !p.TRP() && !validSecret(p.Secret):
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].secret must be whsec_ followed by base64 of at least 16 bytes (the value is not shown)", i)
		case p.URL != "" && !httpURL(p.URL):
			c.problem("ENCLAVE_PEERS_FILE: peers[%d].url: want an http(s) URL of the counterparty's enclave, got %q", i, redactURL(p.URL))
		}
		seen[p.VaspID] = true
		c.Peers = append(c.Peers, p)
	}
	if c.Peers == nil {
		c.Peers = []Peer{}
	}
}

// unknownKeys returns a key of m that is not one of want, if any.
func unknownKeys(m map[string]json.RawMessage, want ...string) string {
	for k := range m {
		known := false
		for _, w := range want {
			known = known || k == w
		}
		if !known {
			return k
		}
	}
	return ""
}

func kindOf(raw json.RawMessage) string {
	t := strings.TrimSpace(string(raw))
	switch {
	case t == "" || t == "null":
		return "null (or nothing)"
	case strings.HasPrefix(t, "{"):
		return "an object"
	case strings.HasPrefix(t, `"`):
		return "a string"
	default:
		return t
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (c *Config) duration(lookup func(string) string, name string, dst *time.Duration) {
	v := strings.TrimSpace(lookup(name))
	if v == "" {
		return
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		c.problem("%s: want a positive duration such as 30s or 5m, got %q", name, v)
		return
	}
	*dst = d
}

func (c *Config) count(lookup func(string) string, name string, most int, dst *int) {
	v := strings.TrimSpace(lookup(name))
	if v == "" {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		c.problem("%s: want a whole number from 1 to %d, got %q", name, most, v)
		return
	}
	*dst = n
}

func (c *Config) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// validSecret reports whether s is a Standard Webhooks secret: whsec_ and base64 of at least
// 16 bytes.
func validSecret(s string) bool {
	b64, ok := strings.CutPrefix(s, "whsec_")
	if !ok {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	return err == nil && len(key) >= 16
}

// redactURL shows a URL or a URL-form DSN by its scheme, user, host and path only: no
// password, no query (which may carry a token or a password=), and nothing at all of a value
// that does not parse as a URL with a host (a key=value DSN, a malformed URL), whatever may be
// in it.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return "(not shown: not a URL with a host)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

func or(v, def string) string {
	if v = strings.TrimSpace(v); v != "" {
		return v
	}
	return def
}
