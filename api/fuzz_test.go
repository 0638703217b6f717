package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
)

// FuzzDecodeJSON: whatever the body, decoding never panics, every refusal is a BAD-REQUEST,
// and what it accepts PostgreSQL can store: UTF-8 without a NUL character or a lone surrogate.
// Run longer with: go test ./api -run '^$' -fuzz FuzzDecodeJSON -fuzztime 60s
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{
		`{"verificationUuid":"urn:uuid:3fa85f64-5717-4562-b3fc-2c963f66afa6","txHash":"0xab"}`,
		`{"txHash":"\u0000"}`, `{"a":"\ud800"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\udc00\ud800"}`, "{\"a\":\"\xff\"}",
		`{"n":1e1000000}`, `{"n":-0.000001e-999}`, `{"a":[1,[2,{"b":"\u0000"}]]}`, `{"vout":2147483648}`,
		`{"beneficiaryVaspId":"2","assetInfo":{"symbol":"ETH","amount":"1"},"payload":{"ivms101":{"beneficiary":{"accountNumber":["0x00"]}}}}`,
		`[]`, `""`, `null`, `{"\u0000":1}`, `{"a\\u0000":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		err := decodeJSON(b, &v)
		if err != nil {
			if e, ok := apperr.As(err); !ok || e.Code != apperr.BadRequest {
				t.Fatalf("refusal %v is not a BAD-REQUEST", err)
			}
			return
		}
		if !utf8.Valid(b) {
			t.Fatalf("accepted a body that is not UTF-8: %q", b)
		}
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case string:
				if strings.ContainsRune(x, 0) {
					t.Fatalf("accepted a string PostgreSQL cannot store: %q in %q", x, b)
				}
			case map[string]any:
				for k, y := range x {
					walk(k)
					walk(y)
				}
			case []any:
				for _, y := range x {
					walk(y)
				}
			}
		}
		walk(v)
		if err := checkEscapes(b); err != nil {
			t.Fatalf("accepted %q: %v", b, err)
		}
	})
}

// FuzzQueryString: whatever the query string, the checks every list route makes before the
// database (storable text, dates, limit, offset, cursor and count) answer 200 or a 400 {code,message}, never
// a 500 or a panic.
// Run longer with: go test ./api -run '^$' -fuzz FuzzQueryString -fuzztime 60s
func FuzzQueryString(f *testing.F) {
	for _, q := range []string{"txHash=%00", "txHash=%FF", "fromDate=2024-01-01T00:00:00%2B16:00", "toDate=2024-01-01T00:00:00-16:00",
		"fromDate=0000-01-01", "limit=0", "limit=99999999999999999999", "offset=-1", "toDate=2024-02-30", "%zz=1", "a=%", "limit=1&limit=2",
		"offset=10001", "cursor=x&offset=0", "count=estimate", "count=exact&cursor=%00"} {
		f.Add(q)
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.Use(withStorableQuery())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	r.GET("/list", func(c *gin.Context) {
		if _, err := page(c, 100, 1000); err != nil {
			fail(c, log, err)
			return
		}
		if _, _, err := dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{})
	})
	f.Fuzz(func(t *testing.T, q string) {
		req := httptest.NewRequest("GET", "/list", nil)
		req.URL.RawQuery = q
		w := httptest.NewRecorder()
		r.ServeHTTP(w, req)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("?%s answered %d: %s", q, w.Code, w.Body)
		}
		var e struct{ Code, Message string }
		if w.Code == http.StatusBadRequest && (json.Unmarshal(w.Body.Bytes(), &e) != nil || e.Code == "" || e.Message == "") {
			t.Fatalf("?%s answered 400 without {code,message}: %s", q, w.Body)
		}
		if w.Code == http.StatusOK {
			for name, vs := range req.URL.Query() {
				for _, v := range vs {
					if strings.ContainsRune(v, 0) || !utf8.ValidString(v) || !utf8.ValidString(name) {
						t.Fatalf("?%s let %q=%q through", q, name, v)
					}
				}
			}
		}
	})
}
