package config

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSynchronousChecksAndDirectory: the VASP's Verify Account and Transaction Status APIs are
// checked like Verify User and logged without credentials; the probe interval and our name are
// read with their defaults.
func TestSynchronousChecksAndDirectory(t *testing.T) {
	t.Parallel()
	c := Load(env(map[string]string{}))
	require.Equal(t, DefaultPeerProbeInterval, c.PeerProbeInterval)
	require.Empty(t, c.VASPName)
	require.Empty(t, c.VerifyAccountURL)

	c = Load(env(map[string]string{"ENCLAVE_VERIFY_ACCOUNT_URL": "https://u:AcctPass-1@backend/verify-account?k=AcctQuery-2",
		"ENCLAVE_TX_STATUS_URL": "https://backend/tx-status", "ENCLAVE_VASP_NAME": " Our VASP ", "ENCLAVE_PEER_PROBE_INTERVAL": "5s"}))
	require.NoError(t, c.Validate(0))
	require.Equal(t, "Our VASP", c.VASPName)
	require.Equal(t, 5*time.Second, c.PeerProbeInterval)
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Info("config", "config", c)
	require.Contains(t, b.String(), `"txStatusUrl":"https://backend/tx-status"`)
	require.Contains(t, b.String(), `"vaspName":"Our VASP"`)
	require.NotContains(t, b.String(), "AcctPass-1")
	require.NotContains(t, b.String(), "AcctQuery-2")

	require.Zero(t, Load(env(map[string]string{"ENCLAVE_PEER_PROBE_INTERVAL": "0"})).PeerProbeInterval, "0 turns the probe off")
	err := Load(env(map[string]string{"ENCLAVE_VERIFY_ACCOUNT_URL": "ftp://u:AcctPass-1@backend", "ENCLAVE_TX_STATUS_URL": "backend/tx",
		"ENCLAVE_PEER_PROBE_INTERVAL": "never"})).Validate(0)
	for _, v := range []string{"ENCLAVE_VERIFY_ACCOUNT_URL", "Verify Account", "ENCLAVE_TX_STATUS_URL", "Transaction Status", "ENCLAVE_PEER_PROBE_INTERVAL"} {
		require.ErrorContains(t, err, v)
	}
	require.NotContains(t, err.Error(), "AcctPass-1")
}
