package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnknownVariableNamesTheNearestKnownOne(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ set, nearest string }{
		"KYTURLWithoutAPI":  {"CHAINALYSIS_KYT_URL", "CHAINALYSIS_KYT_API_URL"},
		"RiskKeyTypo":       {"CHAINALYSIS_RISK_APIKEY", "CHAINALYSIS_RISK_API_KEY"},
		"SingularPeerFile":  {"ENCLAVE_PEER_FILE", "ENCLAVE_PEERS_FILE"},
		"KeysetFileAsPath":  {"ENCLAVE_DATA_KEYSET_PATH", "ENCLAVE_DATA_KEYSET_FILE"},
		"SingularAPIKey":    {"ENCLAVE_API_KEY", "ENCLAVE_API_KEYS"},
		"ListenWithoutAddr": {"ENCLAVE_LISTEN", "ENCLAVE_LISTEN_ADDR"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			warnings, err := CheckEnviron([]string{"PATH=/bin", "ENCLAVE_VASP_ID=1", tc.set + "=secret-value-9911"})
			require.NoError(t, err)
			require.Len(t, warnings, 1)
			require.Contains(t, warnings[0], tc.set)
			require.Contains(t, warnings[0], "did you mean "+tc.nearest+"?")
			require.NotContains(t, warnings[0], "secret-value-9911")
		})
	}
}

func TestKnownAndForeignVariablesPassQuietly(t *testing.T) {
	t.Parallel()
	env := []string{"HOME=/root", "PGPASSWORD=x", "ENCLAVEX=1", "CHAINALYSIS=1"}
	for _, k := range Variables() {
		env = append(env, k+"=v")
	}
	warnings, err := CheckEnviron(env)
	require.NoError(t, err)
	require.Empty(t, warnings)
}

func TestStrictEnvMakesUnknownVariablesAnError(t *testing.T) {
	t.Parallel()
	for _, strict := range []string{"1", "true"} {
		_, err := CheckEnviron([]string{"ENCLAVE_STRICT_ENV=" + strict, "CHAINALYSIS_KYT_URL=http://127.0.0.1:9/x", "ENCLAVE_WORKER=3"})
		require.Error(t, err)
		require.Contains(t, err.Error(), "CHAINALYSIS_KYT_URL is not a variable the enclave reads (did you mean CHAINALYSIS_KYT_API_URL?)")
		require.Contains(t, err.Error(), "ENCLAVE_WORKER is not a variable the enclave reads (did you mean ENCLAVE_WORKERS?)")
		require.NotContains(t, err.Error(), "127.0.0.1")
	}
	warnings, err := CheckEnviron([]string{"ENCLAVE_STRICT_ENV=0", "ENCLAVE_WORKER=3"})
	require.NoError(t, err)
	require.Len(t, warnings, 1)
	_, err = CheckEnviron([]string{"ENCLAVE_STRICT_ENV=1", "ENCLAVE_WORKERS=3"})
	require.NoError(t, err, "strict with nothing unknown starts")
}

// TestReadmeDocumentsEveryVariable: the README's configuration is the user's only list of the
// variables; every one the enclave reads is there (but the test harness's own), and every
// ENCLAVE_*/CHAINALYSIS_* variable the README names is one the enclave reads.
func TestReadmeDocumentsEveryVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	known := map[string]bool{}
	for _, v := range Variables() {
		known[v] = true
		if v == TestChildVariable {
			continue
		}
		require.True(t, strings.Contains(string(readme), "`"+v+"`"), "README.md does not document %s", v)
	}
	// Callback types share the prefix; they are not variables. CHAINALYSIS_KYT_URL is the
	// README's example of a misspelling.
	notVariables := map[string]bool{"CHAINALYSIS_KYT_RESULT": true, "CHAINALYSIS_KYT_ALERT": true, "CHAINALYSIS_ADDRESS_SCREENING_RESULT": true,
		"CHAINALYSIS_KYT_URL": true}
	for _, m := range regexp.MustCompile(`\b(?:ENCLAVE|CHAINALYSIS)_[A-Z0-9_]*[A-Z0-9]\b`).FindAllString(string(readme), -1) {
		require.True(t, known[m] || notVariables[m], "README.md names %s, which the enclave does not read", m)
	}
}

func TestSecretFilesReadableByOthersAreNamed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyset, peers := filepath.Join(dir, "keyset.json"), filepath.Join(dir, "peers.json")
	require.NoError(t, os.WriteFile(keyset, []byte("{}"), 0o600))
	require.NoError(t, os.WriteFile(peers, []byte(`{"peers":[]}`), 0o600))
	c := Config{DataKeysetFile: keyset, PeersFile: peers}
	require.Empty(t, c.ExposedFiles(), "0600 is how they should be")
	require.NoError(t, os.Chmod(peers, 0o640))
	require.Empty(t, c.ExposedFiles(), "a group the enclave's user shares may read them")

	require.NoError(t, os.Chmod(keyset, 0o644))
	require.NoError(t, os.Chmod(peers, 0o604))
	got := c.ExposedFiles()
	require.Len(t, got, 2)
	require.Contains(t, got[0], "ENCLAVE_DATA_KEYSET_FILE "+keyset+" is readable by every user of this machine (mode 0644)")
	require.Contains(t, got[1], "ENCLAVE_PEERS_FILE "+peers+" is readable by every user of this machine (mode 0604)")
}
