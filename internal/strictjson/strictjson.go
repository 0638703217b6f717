// Package strictjson reads JSON whose bytes are signed — the bodies counterparty enclaves send
// on /peer/v1 and their answers to the synchronous checks — so that they have exactly one
// reading. encoding/json lets the last of two equal keys win and matches keys in any case
// ("VERIFICATIONUUID" fills verificationUuid); another parser (the counterparty's, an
// auditor's) may take the first key, or ignore the odd-cased one, and so read the same signed
// bytes as another message. Here a body is refused, naming the key, when
//
//   - an object holds the same key twice (compared after unescaping, so "a\u0062" is "ab"),
//     or two keys that differ only in case;
//   - a key differs only in case from a field the enclave reads (VERIFICATIONUUID for
//     verificationUuid): keys are matched exactly, as RFC 8259 names are.
//
// The token pass is github.com/go-json-experiment/json/jsontext (the encoding/json/v2 draft):
// its decoder unescapes names and rejects duplicates itself, which a hand-written scanner
// would get wrong on escapes. The case rule is this package's: v2 matches names exactly but
// silently drops the odd-cased key, where the sender should learn it was not read.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"unicode"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/travelrule/enclave/internal/apperr"
)

// Unmarshal checks b with Check, then decodes it into v with encoding/json (whose reading,
// once Check passed, is the only one).
func Unmarshal(b []byte, v any) error {
	if err := Check(b, v); err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Check refuses, as BAD-REQUEST naming the key and where it is, a body with a key twice in
// one object, two keys of one object that differ only in case, or a key that differs only in
// case from a JSON field name of v's type (at any depth). A body that is not valid JSON is
// BAD-REQUEST too; callers that explain syntax errors better decode first.
func Check(b []byte, v any) error {
	known := fieldNames(reflect.TypeOf(v))
	d := jsontext.NewDecoder(bytes.NewReader(b))
	// seen holds, for each open object, its keys so far by folded form.
	var seen []map[string]string
	for {
		kind, length := d.StackIndex(d.StackDepth())
		isName := kind == '{' && length%2 == 0
		tok, err := d.ReadToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			var se *jsontext.SyntacticError
			if errors.As(err, &se) && errors.Is(se.Err, jsontext.ErrDuplicateName) {
				return apperr.Bad("%s: the key appears twice in its object; a signed body must have one reading", path(se.JSONPointer))
			}
			return apperr.Bad("request body is not valid JSON (at byte %d)", d.InputOffset())
		}
		switch {
		case isName && tok.Kind() == '"':
			name := tok.String()
			f := fold(name)
			if other, ok := seen[len(seen)-1][f]; ok {
				at := d.StackPointer()
				return apperr.Bad("%s and %s: keys that differ only in case; a signed body must have one reading",
					path(at.Parent().AppendToken(other)), path(at))
			}
			seen[len(seen)-1][f] = name
			if want, ok := known[f]; ok && want != name {
				return apperr.Bad("%s: keys are matched exactly; this one differs from %s only in case", path(d.StackPointer()), want)
			}
		case tok.Kind() == '{':
			seen = append(seen, map[string]string{})
		case tok.Kind() == '}':
			seen = seen[:len(seen)-1]
		}
	}
}

// path writes a JSON pointer as the enclave's messages name fields: payload.ivms101,
// accountNumber[0]; "request body" for the top.
func path(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			// An array index (an all-digit object key is written the same way: rare enough).
			fmt.Fprintf(&b, "[%s]", tok)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	if b.Len() == 0 {
		return "request body"
	}
	return b.String()
}

// fold maps s to one spelling of every string strings.EqualFold (and so encoding/json's
// matching of names) takes for equal: each rune replaced by the least rune of its case-folding
// orbit, so "K", "k" and the Kelvin sign fold alike.
func fold(s string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, s)
}

// names caches fieldNames by type: the set of a type never changes.
var names sync.Map // reflect.Type → map[string]string

// fieldNames returns the JSON names of every struct field reachable from t (through pointers,
// slices, arrays, maps and embedded structs), by folded form.
func fieldNames(t reflect.Type) map[string]string {
	if t == nil {
		return nil
	}
	if m, ok := names.Load(t); ok {
		return m.(map[string]string)
	}
	m := map[string]string{}
	collect(t, m, map[reflect.Type]bool{})
	names.Store(t, m)
	return m
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func collect(t reflect.Type, into map[string]string, done map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || done[t] {
		return
	}
	done[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && f.Anonymous && indirect(f.Type).Kind() == reflect.Struct:
			collect(f.Type, into, done) // encoding/json lifts its fields
			continue
		case name == "" && f.IsExported():
			name = f.Name
		case name == "":
			continue
		}
		into[fold(name)] = name
		collect(f.Type, into, done)
	}
}
