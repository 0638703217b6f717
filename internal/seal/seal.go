// Package seal encrypts personal data at rest (DESIGN.md §11): the IVMS101 payload of a
// verification is sealed with a Tink AEAD keyset (AES-256-GCM) before it reaches PostgreSQL,
// with the verification's uuid as associated data, so a ciphertext copied onto another row does
// not open. Keys rotate: a keyset holds several keys, the primary seals, every key opens, and
// a ciphertext names the key that sealed it. The keyset is a secret: no error or log line of
// this package quotes it.
package seal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// Sealer seals and opens personal data with one keyset.
type Sealer struct {
	aead    tink.AEAD
	primary uint32
	keys    []uint32
}

// ErrKeyset is wrapped by every failure to read a keyset; the keyset itself is never quoted.
var ErrKeyset = errors.New("not a Tink AEAD keyset in JSON (make one with `enclave keyset new`)")

// Load reads a cleartext JSON keyset.
func Load(keysetJSON string) (*Sealer, error) {
	h, err := read(keysetJSON)
	if err != nil {
		return nil, err
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("%w: it holds no AEAD key", ErrKeyset)
	}
	info := h.KeysetInfo()
	s := &Sealer{aead: a, primary: info.GetPrimaryKeyId()}
	for _, k := range info.GetKeyInfo() {
		s.keys = append(s.keys, k.GetKeyId())
	}
	return s, nil
}

func read(keysetJSON string) (*keyset.Handle, error) {
	if strings.TrimSpace(keysetJSON) == "" {
		return nil, fmt.Errorf("%w: it is empty", ErrKeyset)
	}
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(strings.NewReader(keysetJSON)))
	if err != nil {
		return nil, ErrKeyset // Tink's message may quote key material
	}
	return h, nil
}

// New returns a fresh keyset of one AES-256-GCM key, as JSON.
func New() (string, error) {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", err
	}
	return write(h)
}

// Rotate adds a new AES-256-GCM key to a keyset and makes it the primary: new data is sealed
// with it, and data sealed with the older keys still opens. It returns the new keyset and the
// new key's id.
func Rotate(keysetJSON string) (string, uint32, error) {
	h, err := read(keysetJSON)
	if err != nil {
		return "", 0, err
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return "", 0, err
	}
	if err := m.SetPrimary(id); err != nil {
		return "", 0, err
	}
	if h, err = m.Handle(); err != nil {
		return "", 0, err
	}
	out, err := write(h)
	return out, id, err
}

func write(h *keyset.Handle) (string, error) {
	var b bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&b)); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Seal encrypts plaintext for the row identified by ad, with the primary key.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) { return s.aead.Encrypt(plaintext, ad) }

// Open decrypts what Seal sealed for the same ad, with whichever key of the keyset sealed it.
// A ciphertext tampered with, sealed for another row, or by a key not in the keyset fails.
func (s *Sealer) Open(ciphertext, ad []byte) ([]byte, error) {
	p, err := s.aead.Decrypt(ciphertext, ad)
	if err != nil {
		return nil, fmt.Errorf("open sealed data (key %d): not sealed for this row, altered, or by a key not in ENCLAVE_DATA_KEYSET", KeyID(ciphertext))
	}
	return p, nil
}

// Primary is the id of the key that seals.
func (s *Sealer) Primary() uint32 { return s.primary }

// KeyID names the key that sealed a ciphertext: Tink prefixes it (a version byte, then the
// key id, big-endian). 0 when the ciphertext is too short to carry one.
func KeyID(ciphertext []byte) uint32 {
	if len(ciphertext) < 5 {
		return 0
	}
	return binary.BigEndian.Uint32(ciphertext[1:5])
}
