// Package console is the operator console (DESIGN.md §14): server-rendered HTML pages under
// /console for compliance analysts and operators, served by the same binary and port as the
// JSON API. It is a sibling of the API, not a layer on it: its handlers call the same domain
// services (verification, kytjob, screening, callback, exchange), and the only tables it
// owns are its own — operators, sessions, the triage of alerts, notes and the audit log
// (db/schema/00009_console.sql).
//
// Pages are plain HTML that work with JavaScript off; htmx (static/, vendored and embedded)
// only improves them. routes.go lists every route with the role it needs. Personal data (the
// IVMS101 payload) appears only on a verification's page after an analyst asks to reveal it,
// and every reveal is written to the audit log.
package console
