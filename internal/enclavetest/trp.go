package enclavetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TRPCerts are PEM files for TRP's mutual TLS on loopback: one CA, and one certificate it
// signed for 127.0.0.1 and localhost, good for a server and a client. Every enclave and every
// TRP counterparty of a test binary shares them (ENCLAVE_TRP_TLS_CERT, _KEY, _CA).
type TRPCerts struct {
	Cert, Key, CA string
}

var trpCerts struct {
	once sync.Once
	c    TRPCerts
	err  error
}

// TRPTLS returns the test binary's TRP certificates, made once (in the OS temporary directory:
// a child enclave reads the same files).
func TRPTLS(t testing.TB) TRPCerts {
	t.Helper()
	trpCerts.once.Do(func() { trpCerts.c, trpCerts.err = makeCerts() })
	require.NoError(t, trpCerts.err)
	return trpCerts.c
}

// ClientTLS is the TLS configuration of a TRP counterparty's client (or server) with c: it
// presents the certificate and trusts the CA.
func (c TRPCerts) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	require.NoError(t, err)
	ca, err := os.ReadFile(c.CA)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(ca))
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
		MinVersion: tls.VersionTLS12}
}

func makeCerts() (TRPCerts, error) {
	dir, err := os.MkdirTemp("", "enclave-trp-tls-")
	if err != nil {
		return TRPCerts{}, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TRPCerts{}, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "enclave test TRP CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return TRPCerts{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TRPCerts{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), DNSNames: []string{"localhost"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caTmpl, &key.PublicKey, caKey)
	if err != nil {
		return TRPCerts{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return TRPCerts{}, err
	}
	c := TRPCerts{Cert: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, "key.pem"), CA: filepath.Join(dir, "ca.pem")}
	for path, block := range map[string]*pem.Block{c.Cert: {Type: "CERTIFICATE", Bytes: der}, c.Key: {Type: "EC PRIVATE KEY", Bytes: keyDER},
		c.CA: {Type: "CERTIFICATE", Bytes: caDER}} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			return TRPCerts{}, err
		}
	}
	return c, nil
}

// trpServer is the unstarted server of an enclave's TRP listener, on a loopback port.
func trpServer() *httptest.Server { return httptest.NewUnstartedServer(nil) }
