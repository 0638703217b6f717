// Package traddr reads and writes Travel Addresses (OpenVASP TRP v3): "ta" followed by the
// base58 of a URL without its scheme and a 4-byte checksum (the first four bytes of the
// double SHA-256 of the URL), which is how a beneficiary VASP tells an originator where to send
// its inquiry about one account. The URL inside is outside input: Decode checks it before
// anyone sends a request to it.
//
// A Travel Address implies https. For development on one machine (`enclave dev`, tests) the
// URL inside may instead carry an explicit "http://" when its host is a loopback address;
// every other host must be reached over https.
package traddr

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/mr-tron/base58"
)

// prefix starts every Travel Address.
const prefix = "ta"

// MaxLen bounds a Travel Address: a URL of a few hundred bytes, base58 (×1.37) and "ta".
const MaxLen = 2048

// Encode returns the Travel Address of rawURL, an https URL (or an http URL on a loopback
// host). The https scheme is left out, as the specification writes it; the query parameter
// t=i that TRP implementations look for is added when missing, and the query is written in
// sorted order.
func Encode(rawURL string) (string, error) {
	u, err := check(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if q.Get("t") == "" {
		q.Set("t", "i")
	}
	u.RawQuery = q.Encode() // sorted, as TRISA's library writes it: the same URL, the same address
	s := u.String()
	if u.Scheme == "https" {
		s = strings.TrimPrefix(s, "https://")
	}
	b := []byte(s)
	return prefix + base58.Encode(append(b, checksum(b)...)), nil
}

// Decode returns the URL a Travel Address names, with its scheme: https, or http on a
// loopback host when the address says so. A malformed address, a wrong checksum, a URL without
// a host, a scheme other than those, credentials in the URL or a fragment are errors that say
// which.
func Decode(ta string) (string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(ta), prefix)
	switch {
	case !ok:
		return "", errors.New(`a Travel Address starts with "ta"`)
	case len(ta) > MaxLen:
		return "", fmt.Errorf("a Travel Address is at most %d characters", MaxLen)
	}
	raw, err := base58.Decode(rest)
	if err != nil || len(raw) < 5 {
		return "", errors.New(`not a Travel Address: "ta" must be followed by base58 of a URL and its checksum`)
	}
	body, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	if !bytes.Equal(sum, checksum(body)) {
		return "", errors.New("not a Travel Address: its checksum does not match (a character was changed or lost)")
	}
	s := string(body)
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := check(s)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// CheckURL checks rawURL is a URL a TRP request may go to: https, or http on a loopback host,
// without credentials or a fragment. The error says which rule it breaks, without the URL.
func CheckURL(rawURL string) error {
	_, err := check(rawURL)
	return err
}

// check parses rawURL as a URL a TRP request may go to.
func check(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	switch {
	case err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "":
		return nil, errors.New("not an absolute URL with a host")
	case u.User != nil:
		return nil, errors.New("the URL carries credentials, which it must not")
	case u.Fragment != "":
		return nil, errors.New("the URL has a #fragment, which it must not")
	case u.Scheme == "https":
	case u.Scheme == "http" && Loopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("plain http to %s: only a loopback host may be reached without https", u.Hostname())
	default:
		return nil, fmt.Errorf("scheme %q; want https", u.Scheme)
	}
	return u, nil
}

// Loopback reports whether host (a name or an address, without port) is this machine:
// localhost or an address in 127.0.0.0/8 or ::1.
func Loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// LoopbackURL reports whether rawURL's host is a loopback host.
func LoopbackURL(rawURL string) bool {
	u, err := url.Parse(rawURL)
	return err == nil && Loopback(u.Hostname())
}

func checksum(b []byte) []byte {
	h := sha256.Sum256(b)
	h = sha256.Sum256(h[:])
	return h[:4]
}
