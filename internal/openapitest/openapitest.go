// Package openapitest checks, in tests, that what the enclave answers is what openapi.yaml
// says it answers: every response a test reads through Client is validated against the
// document, so the contract cannot drift from the code unnoticed.
package openapitest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"gopkg.in/yaml.v3"

	enclave "github.com/travelrule/enclave"
)

var (
	once    sync.Once
	checker validator.Validator
	loadErr error
)

func load() {
	doc, err := libopenapi.NewDocument(enclave.OpenAPI)
	if err != nil {
		loadErr = err
		return
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		loadErr = errs[0]
		return
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		var b strings.Builder
		for _, e := range verrs {
			b.WriteString(e.Message + ": " + e.Reason + "\n")
			for _, se := range e.SchemaValidationErrors {
				fmt.Fprintf(&b, "  %s at %s (line %d)\n", se.Reason, se.FieldPath, se.Line)
			}
		}
		loadErr = &docError{b.String()}
		return
	}
	checker = v
}

type docError struct{ msg string }

func (e *docError) Error() string {
	return "openapi.yaml is not a valid OpenAPI 3.1 document:\n" + e.msg
}

// Client sends requests and fails the test when an answer does not match openapi.yaml.
type Client struct {
	T      testing.TB
	Base   string
	Bearer string
	// Unchecked skips validation, for answers to routes the document cannot list (404, 405).
	Unchecked bool
}

// With returns a copy of the client that reports to t (for subtests).
func (c *Client) With(t testing.TB) *Client {
	cp := *c
	cp.T = t
	return &cp
}

// httpClient fails a request the enclave never answers instead of hanging the test.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// Response is a read answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends req (path relative to Base) and returns the validated answer.
func (c *Client) Do(method, path string, body []byte, header http.Header) Response {
	c.T.Helper()
	req, err := http.NewRequest(method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		c.T.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if !c.Unchecked {
		Check(c.T, req, resp.StatusCode, resp.Header, b)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// Check fails t when the answer (status, header, body) to req is not one openapi.yaml allows.
func Check(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	once.Do(load)
	if loadErr != nil {
		t.Fatalf("%v", loadErr)
	}
	// Validate against a copy with the body restored and no request body to re-read.
	r := req.Clone(req.Context())
	r.Body = http.NoBody
	resp := &http.Response{StatusCode: status, Header: header, Body: io.NopCloser(bytes.NewReader(body)), Request: r}
	if ok, errs := checker.ValidateHttpResponse(r, resp); !ok {
		var b strings.Builder
		for _, e := range errs {
			b.WriteString("\n  " + e.Message)
			if e.Reason != "" {
				b.WriteString(": " + e.Reason)
			}
			for _, se := range e.SchemaValidationErrors {
				b.WriteString("\n    " + se.Reason + " at " + se.FieldPath)
			}
		}
		t.Errorf("%s %s answered %d, not as openapi.yaml says:%s\nbody: %s", req.Method, req.URL.Path, status, b.String(), body)
	}
}

// Operations lists every "METHOD /path" openapi.yaml documents, paths in OpenAPI form
// (/v1/verifications/{verificationUuid}).
func Operations(t testing.TB) map[string]bool {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(enclave.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	ops := map[string]bool{}
	for p, item := range doc.Paths {
		for m := range item {
			ops[strings.ToUpper(m)+" "+p] = true
		}
	}
	return ops
}

// QueryParameters lists, by "METHOD /path" as Operations names them, the query parameters
// openapi.yaml documents for each operation (those of components/parameters it refers to
// included).
func QueryParameters(t testing.TB) map[string][]string {
	t.Helper()
	type param struct {
		Ref  string `yaml:"$ref"`
		Name string `yaml:"name"`
		In   string `yaml:"in"`
	}
	var doc struct {
		Paths      map[string]map[string]struct{ Parameters []param } `yaml:"paths"`
		Components struct {
			Parameters map[string]param `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(enclave.OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	out := map[string][]string{}
	for p, item := range doc.Paths {
		for m, op := range item {
			names := []string{}
			for _, prm := range op.Parameters {
				if prm.Ref != "" {
					prm = doc.Components.Parameters[strings.TrimPrefix(prm.Ref, "#/components/parameters/")]
				}
				if prm.In == "query" {
					names = append(names, prm.Name)
				}
			}
			out[strings.ToUpper(m)+" "+p] = names
		}
	}
	return out
}
