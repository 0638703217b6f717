package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzPeersFile: whatever the peers file holds, loading it never panics, a file it accepts
// gives only peers that can authenticate, and no problem quotes a secret.
// Run longer with: go test ./internal/config -run '^$' -fuzz FuzzPeersFile -fuzztime 60s
func FuzzPeersFile(f *testing.F) {
	for _, s := range []string{
		`{"peers":[{"vaspId":"7","name":"Seven","url":"https://seven","secret":"` + goodSecret + `"}]}`,
		`{"PEERS":[]}`, `{"peers":null}`, `{"peers":[{"VASPID":"7"}]}`, `{"peers":[{"vaspId":"7 8","secret":"whsec_x"}]}`,
		`[]`, `null`, ``, "\xff", `{"peers":[null,1,"a",{}]}`, `{"peers":[{"vaspId":"1","secret":"` + goodSecret + `"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(t.TempDir(), "peers.json")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		c := Load(env(map[string]string{"ENCLAVE_PEERS_FILE": p, "ENCLAVE_VASP_ID": "1"}))
		err := c.Validate(0)
		if err == nil {
			for _, peer := range c.Peers {
				if peer.VaspID == "" || peer.VaspID == "1" || strings.ContainsAny(peer.VaspID, " \t") || !validSecret(peer.Secret) {
					t.Fatalf("accepted a peer that can never authenticate: %+v", peer)
				}
			}
			return
		}
		if strings.Contains(err.Error(), goodSecret) {
			t.Fatalf("a problem quotes a secret: %v", err)
		}
	})
}
