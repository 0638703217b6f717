package config

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func peersFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "peers.json")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

// TestTRPPeer: a peers-file counterparty may say "protocol": "trp" (then its url is its TRP
// endpoint and it needs no secret); the default is "enclave"; anything else is named.
func TestTRPPeer(t *testing.T) {
	t.Parallel()
	c := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": peersFile(t, `{"peers":[
		{"vaspId":"trp-1","name":"T","url":"http://127.0.0.1:9/transfers","protocol":"trp"},
		{"vaspId":"enc-1","name":"E","url":"http://127.0.0.1:8","secret":"`+goodSecret+`"}]}`),
		"ENCLAVE_TRP_LISTEN_ADDR": "127.0.0.1:8091", "ENCLAVE_TRP_URL": "http://localhost:8091", "ENCLAVE_TRP_INSECURE": "1"}))
	require.NoError(t, c.Validate(0))
	p, _ := c.Peer("trp-1")
	require.True(t, p.TRP())
	p, _ = c.Peer("enc-1")
	require.Equal(t, ProtocolEnclave, p.Protocol)

	c = Load(env(map[string]string{"ENCLAVE_PEERS_FILE": peersFile(t, `{"peers":[{"vaspId":"x","url":"http://h","protocol":"sftp"}]}`)}))
	require.ErrorContains(t, c.Validate(0), `peers[0].protocol: want "enclave" (the default) or "trp", got "sftp"`)
}

// TestTRPNeedsMutualTLS: TRP is mutual TLS unless ENCLAVE_TRP_INSECURE=1, which is refused
// unless the listener, its URL and every TRP counterparty are on loopback; a listener needs
// the URL it is reached at.
func TestTRPNeedsMutualTLS(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		env  map[string]string
		want string
	}{
		"NoTLS":        {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": ":8091", "ENCLAVE_TRP_URL": "https://trp.example"}, "ENCLAVE_TRP_TLS_CERT, ENCLAVE_TRP_TLS_KEY and ENCLAVE_TRP_TLS_CA: required"},
		"NoURL":        {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": "127.0.0.1:8091", "ENCLAVE_TRP_INSECURE": "1"}, "ENCLAVE_TRP_URL: required"},
		"NoListener":   {map[string]string{"ENCLAVE_TRP_URL": "http://localhost:8091", "ENCLAVE_TRP_INSECURE": "1"}, "ENCLAVE_TRP_LISTEN_ADDR: required"},
		"PlainURL":     {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": ":8091", "ENCLAVE_TRP_URL": "http://trp.example"}, "ENCLAVE_TRP_URL: plain http to trp.example"},
		"InsecureWide": {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": ":8091", "ENCLAVE_TRP_URL": "http://localhost:8091", "ENCLAVE_TRP_INSECURE": "1"}, "ENCLAVE_TRP_INSECURE: plain HTTP is allowed only on loopback, and ENCLAVE_TRP_LISTEN_ADDR :8091 is not"},
		"InsecurePeer": {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": "127.0.0.1:8091", "ENCLAVE_TRP_URL": "http://localhost:8091", "ENCLAVE_TRP_INSECURE": "1",
			"ENCLAVE_PEERS_FILE": peersFile(t, `{"peers":[{"vaspId":"far","url":"https://trp.example/t","protocol":"trp"}]}`)}, "the TRP counterparty far is not"},
		"BadFiles": {map[string]string{"ENCLAVE_TRP_LISTEN_ADDR": ":8091", "ENCLAVE_TRP_URL": "https://trp.example", "ENCLAVE_TRP_TLS_CERT": "/nonexistent/c.pem",
			"ENCLAVE_TRP_TLS_KEY": "/nonexistent/k.pem", "ENCLAVE_TRP_TLS_CA": "/nonexistent/ca.pem"}, "ENCLAVE_TRP_TLS_CERT, ENCLAVE_TRP_TLS_KEY: not a PEM certificate"},
		"PeerNeedsListener": {map[string]string{"ENCLAVE_PEERS_FILE": peersFile(t, `{"peers":[{"vaspId":"t","url":"https://trp.example/t","protocol":"trp"}]}`)}, "ENCLAVE_TRP_URL: required"},
	} {
		require.ErrorContains(t, Load(env(c.env)).Validate(0), c.want, name)
	}
	// Without TRP, nothing of it is needed.
	c := Load(env(map[string]string{}))
	require.NoError(t, c.Validate(0))
	server, client, err := c.TRPTLS()
	require.NoError(t, err)
	require.Nil(t, server)
	require.Nil(t, client)
}
