// Package trp tests the enclave's TRP transport against an implementation nobody here wrote:
// TRISA's Go library (github.com/trisacrypto/trisa, pkg/openvasp — its TRP client, handlers and
// Travel Address codec). It is a module of its own so that the enclave's module never depends
// on TRISA's (gRPC, protobuf, …): `.ci/run` runs it after the main suite.
package trp
