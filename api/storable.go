package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
)

// checkStorable refuses JSON that Go reads but PostgreSQL would not store, naming the field:
// bytes that are not UTF-8, a NUL character (text and jsonb cannot hold one), a lone UTF-16
// surrogate escape (jsonb refuses it), and numbers beyond what jsonb's numeric holds. Without
// it each came back as a 500 from the database. b is valid JSON: decodeJSON checked.
func checkStorable(b []byte) error {
	if !utf8.Valid(b) {
		i := 0
		for i < len(b) {
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n <= 1 {
				break
			}
			i += n
		}
		return apperr.Bad("request body is not valid UTF-8 (at byte %d)", i)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		array bool
		index int
		key   bool // an object expecting a key next
	}
	var stack []frame
	var path []any   // object keys and array indexes down to the current value
	done := func() { // a value ended: its container moves on
		if len(stack) == 0 {
			return
		}
		top := &stack[len(stack)-1]
		if top.array {
			top.index++
			path[len(path)-1] = top.index
		} else {
			top.key = true
			path = path[:len(path)-1]
		}
	}
	prev := int64(0)
	for {
		tok, err := d.Token()
		if err != nil {
			return nil // the end (decodeJSON reported any syntax error)
		}
		raw := b[prev:d.InputOffset()]
		prev = d.InputOffset()
		if t, ok := tok.(json.Delim); ok && (t == '}' || t == ']') {
			stack = stack[:len(stack)-1]
			if t == ']' {
				path = path[:len(path)-1]
			}
			done()
			continue
		}
		isKey := len(stack) > 0 && stack[len(stack)-1].key
		if isKey { // an object's key: the value follows
			path = append(path, tok.(string))
			stack[len(stack)-1].key = false
		}
		if err := checkEscapes(raw); err != nil {
			return apperr.Bad("%s: %s", jsonPath(path), err)
		}
		switch t := tok.(type) {
		case string:
			if strings.ContainsRune(t, 0) {
				return apperr.Bad("%s: a NUL character (\\u0000) cannot be stored", jsonPath(path))
			}
		case json.Number:
			if !numericFits(string(t)) {
				return apperr.Bad("%s: the number %.40s is beyond what can be stored", jsonPath(path), string(t))
			}
		case json.Delim: // an opening one: the value ends with its closing one
			if t == '{' {
				stack = append(stack, frame{key: true})
			} else {
				stack = append(stack, frame{array: true})
				path = append(path, 0)
			}
			continue
		}
		if !isKey {
			done()
		}
	}
}

// checkEscapes finds \u escapes that jsonb refuses in raw JSON text: NUL, and a surrogate
// that is not a high one followed by a low one.
func checkEscapes(raw []byte) error {
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		if i+1 >= len(raw) || raw[i+1] != 'u' || i+6 > len(raw) {
			i++ // another escape: skip the escaped character
			continue
		}
		v, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 32)
		if err != nil {
			continue
		}
		switch {
		case v == 0:
			return fmt.Errorf("a NUL character (\\u0000) cannot be stored")
		case v >= 0xD800 && v <= 0xDBFF:
			if i+12 <= len(raw) && raw[i+6] == '\\' && raw[i+7] == 'u' {
				if lo, err := strconv.ParseUint(string(raw[i+8:i+12]), 16, 32); err == nil && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return fmt.Errorf("\\u%04x is half of a UTF-16 surrogate pair", v)
		case v >= 0xDC00 && v <= 0xDFFF:
			return fmt.Errorf("\\u%04x is half of a UTF-16 surrogate pair", v)
		}
		i += 5
	}
	return nil
}

// numericFits reports whether a JSON number is within what PostgreSQL's numeric (and so jsonb)
// holds with room to spare: at most 1000 digits before or after the point.
func numericFits(n string) bool {
	mant, exp, _ := strings.Cut(strings.ToLower(n), "e")
	e := int64(0)
	if exp != "" {
		v, err := strconv.ParseInt(exp, 10, 32)
		if err != nil {
			return false
		}
		e = v
	}
	whole, frac, _ := strings.Cut(strings.TrimLeft(mant, "-"), ".")
	return int64(len(whole))+e <= 1000 && int64(len(frac))-e <= 1000
}

// jsonPath writes a path as the messages name fields: assetInfo.amount, accountNumber[0].
func jsonPath(path []any) string {
	if len(path) == 0 {
		return "request body"
	}
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

// withStorableQuery refuses a query string that does not parse (?a=%zz: Go's URL.Query drops
// such a pair silently, so a filter would be ignored), and query parameters that PostgreSQL
// could not compare with text: a NUL character or bytes that are not UTF-8 (?txHash=%00,
// ?txHash=%FF), naming the parameter.
func withStorableQuery() gin.HandlerFunc {
	return func(c *gin.Context) {
		query, err := url.ParseQuery(c.Request.URL.RawQuery)
		if err != nil && !strings.HasPrefix(c.Request.URL.Path, "/console") {
			abort(c, http.StatusBadRequest, errorBody{Code: apperr.BadRequest,
				Message: apperr.New(apperr.BadRequest, "the query string is malformed: %s", err).Message})
			return
		}
		for name, vs := range query {
			for _, v := range vs {
				if strings.ContainsRune(v, 0) || !utf8.ValidString(v) || !utf8.ValidString(name) {
					abort(c, http.StatusBadRequest, errorBody{Code: apperr.BadRequest,
						Message: apperr.Quote(strings.ToValidUTF8(name, "?")) + ": a query parameter must be UTF-8 text without NUL characters"})
					return
				}
			}
		}
		c.Next()
	}
}
