package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/travelrule/enclave/internal/traddr"
)

// loadTRP reads the TRP variables (DESIGN.md §15) and checks they hang together: a listener
// needs the URL it is reached at and the reverse; TRP needs mTLS (a certificate, its key and
// the counterparties' CA) unless ENCLAVE_TRP_INSECURE=1, which is refused unless the listener,
// its URL and every TRP counterparty are on loopback.
func (c *Config) loadTRP(lookup func(string) string) {
	c.TRPListenAddr = strings.TrimSpace(lookup("ENCLAVE_TRP_LISTEN_ADDR"))
	c.TRPURL = strings.TrimRight(strings.TrimSpace(lookup("ENCLAVE_TRP_URL")), "/")
	c.TRPTLSCert = strings.TrimSpace(lookup("ENCLAVE_TRP_TLS_CERT"))
	c.TRPTLSKey = strings.TrimSpace(lookup("ENCLAVE_TRP_TLS_KEY"))
	c.TRPTLSCA = strings.TrimSpace(lookup("ENCLAVE_TRP_TLS_CA"))
	switch v := strings.TrimSpace(lookup("ENCLAVE_TRP_INSECURE")); v {
	case "", "0", "false":
	case "1", "true":
		c.TRPInsecure = true
	default:
		c.problem("ENCLAVE_TRP_INSECURE: want 1 or unset, got %q", v)
	}
	for _, p := range c.CheckTRP() {
		c.problem("%s", p)
	}
}

// TRPEnabled reports whether this enclave speaks TRP: its listener is configured.
func (c Config) TRPEnabled() bool { return c.TRPListenAddr != "" || c.TRPURL != "" }

// CheckTRP returns the problems of the TRP configuration (also for configurations built in
// code, as tests and dev build them).
func (c Config) CheckTRP() []string {
	var out []string
	trpPeers := false
	for _, p := range c.Peers {
		trpPeers = trpPeers || p.TRP()
	}
	if !c.TRPEnabled() && !trpPeers {
		return nil
	}
	switch {
	case c.TRPURL == "":
		out = append(out, "ENCLAVE_TRP_URL: required for TRP (the https URL counterparties reach ENCLAVE_TRP_LISTEN_ADDR at; Travel Addresses and callbacks name it)")
	case !httpURL(c.TRPURL):
		out = append(out, fmt.Sprintf("ENCLAVE_TRP_URL: want an https URL, got %q", redactURL(c.TRPURL)))
	case traddr.CheckURL(c.TRPURL) != nil:
		out = append(out, fmt.Sprintf("ENCLAVE_TRP_URL: %s", traddr.CheckURL(c.TRPURL)))
	}
	if c.TRPListenAddr == "" {
		out = append(out, "ENCLAVE_TRP_LISTEN_ADDR: required for TRP (where inquiries and the callbacks of TRP transfers are served)")
	}
	if c.TRPInsecure {
		bad := []string{}
		if host, _, err := net.SplitHostPort(c.TRPListenAddr); c.TRPListenAddr != "" && (err != nil || !traddr.Loopback(host)) {
			bad = append(bad, "ENCLAVE_TRP_LISTEN_ADDR "+c.TRPListenAddr)
		}
		if c.TRPURL != "" && !traddr.LoopbackURL(c.TRPURL) {
			bad = append(bad, "ENCLAVE_TRP_URL")
		}
		for _, p := range c.Peers {
			if p.TRP() && !traddr.LoopbackURL(p.URL) {
				bad = append(bad, "the TRP counterparty "+p.VaspID)
			}
		}
		if len(bad) > 0 {
			out = append(out, "ENCLAVE_TRP_INSECURE: plain HTTP is allowed only on loopback, and "+strings.Join(bad, ", ")+" is not")
		}
		return out
	}
	if c.TRPTLSCert == "" || c.TRPTLSKey == "" || c.TRPTLSCA == "" {
		return append(out, "ENCLAVE_TRP_TLS_CERT, ENCLAVE_TRP_TLS_KEY and ENCLAVE_TRP_TLS_CA: required for TRP, which is mutual TLS both ways "+
			"(or ENCLAVE_TRP_INSECURE=1 when everything is on loopback)")
	}
	if _, _, err := c.TRPTLS(); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// TRPTLS returns the TLS configurations of the TRP listener (which requires a client
// certificate signed by ENCLAVE_TRP_TLS_CA) and of the TRP client (which presents ours and
// trusts that CA only). Both are nil with ENCLAVE_TRP_INSECURE, or when none of the three
// files is named (CheckTRP says whether TRP needs them).
func (c Config) TRPTLS() (server, client *tls.Config, err error) {
	if c.TRPInsecure || (c.TRPTLSCert == "" && c.TRPTLSKey == "" && c.TRPTLSCA == "") {
		return nil, nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TRPTLSCert, c.TRPTLSKey)
	if err != nil {
		return nil, nil, fmt.Errorf("ENCLAVE_TRP_TLS_CERT, ENCLAVE_TRP_TLS_KEY: not a PEM certificate and its key: %v", err)
	}
	pem, err := os.ReadFile(c.TRPTLSCA)
	if err != nil {
		return nil, nil, fmt.Errorf("ENCLAVE_TRP_TLS_CA: cannot read %s: %v", c.TRPTLSCA, errors.Unwrap(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, nil, fmt.Errorf("ENCLAVE_TRP_TLS_CA: %s holds no PEM certificate", c.TRPTLSCA)
	}
	server = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert}
	client = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: pool}
	return server, client, nil
}
