package config

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// StrictEnvVariable names the variable that turns an unknown ENCLAVE_* or CHAINALYSIS_*
// variable from a warning into a start-up error: a deployment that sets it cannot run with a
// misspelled variable silently ignored (a misspelled CHAINALYSIS_KYT_API_URL would leave serve
// pointing at the real Chainalysis).
const StrictEnvVariable = "ENCLAVE_STRICT_ENV"

// Variables returns every environment variable the enclave reads, sorted: the configuration
// of serve and the other subcommands, StrictEnvVariable, and the one the test harness sets on
// the enclaves it starts as child processes. The README documents every one of them but the
// last (a test says so).
func Variables() []string {
	v := []string{
		"DATABASE_URL",
		"CHAINALYSIS_KYT_API_KEY", "CHAINALYSIS_KYT_API_URL", "CHAINALYSIS_RISK_API_KEY", "CHAINALYSIS_RISK_API_URL", "CHAINALYSIS_TIMEOUT",
		"ENCLAVE_API_KEYS", "ENCLAVE_CALLBACK_ON_REGISTERED", "ENCLAVE_CALLBACK_SECRET", "ENCLAVE_CALLBACK_TOKEN", "ENCLAVE_CALLBACK_URL",
		"ENCLAVE_CALLBACK_WORKERS", "ENCLAVE_DATA_KEYSET", "ENCLAVE_DATA_KEYSET_FILE", "ENCLAVE_HTTP_MAX_CONNS", "ENCLAVE_HTTP_MAX_CONNS_PER_CLIENT",
		"ENCLAVE_HTTP_MIN_BODY_RATE", "ENCLAVE_HTTP_READ_TIMEOUT", "ENCLAVE_HTTP_WRITE_TIMEOUT", "ENCLAVE_KYT_MAX_AGE", "ENCLAVE_KYT_MONITOR_INTERVAL",
		"ENCLAVE_KYT_POLL_MAX_INTERVAL", "ENCLAVE_KYT_RATE_LIMIT", "ENCLAVE_LISTEN_ADDR", "ENCLAVE_PEERS_FILE", "ENCLAVE_PEER_PROBE_INTERVAL",
		"ENCLAVE_PEER_WORKERS", "ENCLAVE_PIPELINE_CONNECTIONS", "ENCLAVE_RETENTION", "ENCLAVE_SHUTDOWN_TIMEOUT", "ENCLAVE_TX_STATUS_URL",
		"ENCLAVE_VASP_API_TIMEOUT", "ENCLAVE_VASP_ID", "ENCLAVE_VASP_NAME", "ENCLAVE_VERIFICATION_TIMEOUT", "ENCLAVE_VERIFY_ACCOUNT_URL",
		"ENCLAVE_VERIFY_USER_URL", "ENCLAVE_WORKERS",
		"ENCLAVE_TRP_LISTEN_ADDR", "ENCLAVE_TRP_URL", "ENCLAVE_TRP_TLS_CERT", "ENCLAVE_TRP_TLS_KEY", "ENCLAVE_TRP_TLS_CA", "ENCLAVE_TRP_INSECURE",
		StrictEnvVariable, TestChildVariable,
	}
	sort.Strings(v)
	return v
}

// TestChildVariable is set by the test harness (internal/enclavetest) on the enclaves it runs as
// child processes; known here so that it is never taken for a misspelling.
const TestChildVariable = "ENCLAVE_TEST_CHILD"

// CheckEnviron looks at the names of an environment (os.Environ's "NAME=value" entries) for
// ENCLAVE_* and CHAINALYSIS_* variables the enclave does not read, and names the nearest known
// variable for each. It returns them as warnings, or, when ENCLAVE_STRICT_ENV is set to 1 or
// true in the same environment, as one error. Values are never part of a message.
func CheckEnviron(environ []string) (warnings []string, err error) {
	known := Variables()
	isKnown := map[string]bool{}
	for _, k := range known {
		isKnown[k] = true
	}
	strict := false
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if name == StrictEnvVariable {
			v := strings.ToLower(strings.TrimSpace(value))
			strict = v == "1" || v == "true"
		}
		if isKnown[name] || !(strings.HasPrefix(name, "ENCLAVE_") || strings.HasPrefix(name, "CHAINALYSIS_")) {
			continue
		}
		warnings = append(warnings, fmt.Sprintf("%s is not a variable the enclave reads (did you mean %s?)", name, Nearest(name, known)))
	}
	sort.Strings(warnings)
	if strict && len(warnings) > 0 {
		return nil, errors.New("configuration: " + strings.Join(warnings, "; ") + " (" + StrictEnvVariable + " is set: unknown variables are errors)")
	}
	return warnings, nil
}

// Nearest returns the name among known closest to name by edit distance (insertions, deletions
// and substitutions of one character), the first in known's order on a tie.
func Nearest(name string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		if d := editDistance(name, k); bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// ExposedFiles describes each file of the configuration that holds a secret (the data keyset
// of ENCLAVE_DATA_KEYSET_FILE, the peers' secrets of ENCLAVE_PEERS_FILE) and that every user of
// the machine may read, so that serve can warn: such a file should be mode 0600 (or 0640 for a
// group the enclave's user shares). A file that cannot be stat'ed is left to Load's problems.
func (c Config) ExposedFiles() []string {
	var exposed []string
	for _, f := range []struct{ name, path string }{{"ENCLAVE_DATA_KEYSET_FILE", c.DataKeysetFile}, {"ENCLAVE_PEERS_FILE", c.PeersFile}} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err == nil && fi.Mode().Perm()&0o004 != 0 {
			exposed = append(exposed, fmt.Sprintf("%s %s is readable by every user of this machine (mode %04o); it holds secrets: chmod 600 it",
				f.name, f.path, fi.Mode().Perm()))
		}
	}
	return exposed
}
