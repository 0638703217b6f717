package console

import "net/http"

// routes lists every console route with the role it needs, in one place. Every route but the
// static files and the login page needs a logged-in operator.
//
// Order of the middleware, outermost first: security headers on every answer (errors
// included); cross-origin protection, refusing a state-changing request another site's page
// sends (every change is a POST); the session, loaded before and saved after the handler.
func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", staticFiles())
	mux.HandleFunc("GET /console/login", c.handleLoginForm)
	mux.HandleFunc("POST /console/login", c.handleLogin)
	mux.Handle("POST /console/logout", c.need(Viewer, c.handleLogout))
	mux.HandleFunc("GET /console", redirect("/console/alerts"))
	mux.HandleFunc("GET /console/{$}", redirect("/console/alerts"))

	mux.Handle("GET /console/overview", c.need(Viewer, c.handleOverview))

	// Alerts: the landing page. Viewers read; analysts triage.
	mux.Handle("GET /console/alerts", c.need(Viewer, c.handleAlerts))
	mux.Handle("GET /console/alerts.csv", c.need(Viewer, c.handleAlertsCSV))
	mux.Handle("GET /console/alerts/{id}", c.need(Viewer, c.handleAlert))
	mux.Handle("POST /console/alerts/{id}/assign", c.need(Analyst, c.handleAssign))
	mux.Handle("POST /console/alerts/{id}/status", c.need(Analyst, c.handleStatus))
	mux.Handle("POST /console/alerts/{id}/notes", c.need(Analyst, c.handleNote))

	// Verifications: IVMS101 masked; analysts reveal it, audited.
	mux.Handle("GET /console/verifications", c.need(Viewer, c.handleVerifications))
	mux.Handle("GET /console/verifications.csv", c.need(Viewer, c.handleVerificationsCSV))
	mux.Handle("GET /console/verifications/{uuid}", c.need(Viewer, c.handleVerification))
	mux.Handle("POST /console/verifications/{uuid}/reveal", c.need(Analyst, c.handleReveal))

	// Assessments and screenings.
	mux.Handle("GET /console/assessments", c.need(Viewer, c.handleAssessments))
	mux.Handle("GET /console/assessments/{id}", c.need(Viewer, c.handleAssessment))
	mux.Handle("GET /console/screenings", c.need(Viewer, c.handleScreenings))

	// Deliveries: admins redeliver.
	mux.Handle("GET /console/callbacks", c.need(Viewer, c.handleCallbacks))
	mux.Handle("GET /console/callbacks.csv", c.need(Viewer, c.handleCallbacksCSV))
	mux.Handle("POST /console/callbacks/{id}/redeliver", c.need(Admin, c.handleRedeliverCallback))
	mux.Handle("POST /console/callbacks/redeliver-failed", c.need(Admin, c.handleRedeliverFailedCallbacks))
	mux.Handle("GET /console/peer-messages", c.need(Viewer, c.handlePeerMessages))
	mux.Handle("POST /console/peer-messages/{id}/redeliver", c.need(Admin, c.handleRedeliverMessage))
	mux.Handle("POST /console/peer-messages/redeliver-failed", c.need(Admin, c.handleRedeliverFailedMessages))

	mux.Handle("GET /console/counterparties", c.need(Viewer, c.handleCounterparties))
	mux.Handle("GET /console/audit", c.need(Viewer, c.handleAudit))
	mux.Handle("GET /console/audit.csv", c.need(Viewer, c.handleAuditCSV))
	// Operators: admins only, through the functions `enclave operator` uses; each change audited.
	mux.Handle("GET /console/operators", c.need(Admin, c.handleOperators))
	mux.Handle("POST /console/operators", c.need(Admin, c.handleAddOperator))
	mux.Handle("POST /console/operators/{name}/role", c.need(Admin, c.handleSetRole))
	mux.Handle("POST /console/operators/{name}/disable", c.need(Admin, c.handleDisableOperator))
	mux.Handle("POST /console/operators/{name}/password", c.need(Admin, c.handleResetPassword))

	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) { c.fail(w, r, notFound("page "+r.URL.Path)) })

	sessions := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.sessions(r).LoadAndSave(mux).ServeHTTP(w, r) })
	return secureHeaders(http.NewCrossOriginProtection().Handler(sessions))
}

func redirect(to string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusSeeOther) }
}
