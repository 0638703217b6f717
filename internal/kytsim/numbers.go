package kytsim

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// decimalText reads a JSON number or numeric string as exact decimal text; empty when absent.
func decimalText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
	} else {
		s = string(raw)
	}
	if _, ok := new(big.Rat).SetString(s); !ok {
		return "", fmt.Errorf("%s is not a number", raw)
	}
	return s, nil
}

// usd is amount × price rounded half-up to cents, or nil when no price is known.
func usd(amount, asset, givenPrice string) *string {
	price := givenPrice
	if price == "" {
		price = assets[strings.ToUpper(asset)].Price
	}
	a, ok1 := new(big.Rat).SetString(amount)
	p, ok2 := new(big.Rat).SetString(price)
	if !ok1 || !ok2 {
		return nil
	}
	v := new(big.Rat).Mul(a, p).FloatString(2)
	return &v
}

// chainAmount is the sandbox chain's amount for a transfer nobody stated one for: repeatable,
// from a hash of the reference, between 0.0001 and 10.
func chainAmount(ref string) string {
	sum := md5.Sum([]byte(ref))
	n := binary.BigEndian.Uint32(sum[:4])%100000 + 1
	return new(big.Rat).SetFrac64(int64(n), 10000).FloatString(4)
}

func numberOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return json.Number(*s)
}

func numberOrZero(s string) json.Number {
	if s == "" {
		return "0"
	}
	return json.Number(s)
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func mustTime(s string, def time.Time) time.Time {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.000-07:00"} {
		if t, err := time.Parse(l, s); err == nil {
			return t
		}
	}
	return def
}
