// Package enclave holds what belongs to the repository as a whole. Today that is the OpenAPI
// document, embedded so the binary serves the contract it was built with.
package enclave

import _ "embed"

// OpenAPI is openapi.yaml: every route, body, answer and error code of the HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
