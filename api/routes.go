// Package api is the enclave's HTTP face: the Gin router, its middleware, the handlers and the
// {code,message} error envelope. Handlers translate HTTP to calls on the domain services and
// back; the rules live in the domain packages.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/verification"
)

// Deps are what the router needs.
type Deps struct {
	Log           *slog.Logger
	Config        config.Config
	Verifications *verification.Service
	Assessments   *kytjob.Service
	Screenings    *screening.Service
	Callbacks     *callback.Service
	Exchange      *exchange.Service
	// Directory lists the counterparties and their health.
	Directory *exchange.Directory
	// Checks answers account verifications and tx inquiries, both ways.
	Checks *exchange.Checks
	// Waiter serves Prefer: wait on the risk-assessment POST routes.
	Waiter *assessment.Waiter
	// Ready reports whether the enclave can serve (database reachable, schema current).
	Ready func(context.Context) error
	// Metrics is the registry /metrics exposes.
	Metrics *prometheus.Registry
	// Console is the operator console (internal/console), served under /console with its own
	// login and session cookie; nil serves none.
	Console http.Handler
}

// NewHandler returns the enclave's whole HTTP API. Every route is listed here, with its
// authentication visible on the line.
func NewHandler(d Deps) *gin.Engine {
	gin.SetMode(gin.ReleaseMode) // no debug route dump; process-wide, and the same value every time
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// Order: request id first so every later log line and error carries it; logging wraps
	// recovery so a panic is logged as the 500 it becomes; the body cap before any handler reads.
	r.Use(withRequestID(), withHeaders(), withLogging(d.Log), withRecovery(d.Log), withBodyLimit(MaxBodyBytes, d.Config.HTTPMinBodyRate), withStorableQuery())
	r.NoRoute(func(c *gin.Context) {
		abort(c, http.StatusNotFound, errorBody{Code: apperr.NotFound,
			Message: apperr.New(apperr.NotFound, "no route %s %s", c.Request.Method, c.Request.URL.Path).Message})
	})
	r.NoMethod(func(c *gin.Context) {
		abort(c, http.StatusMethodNotAllowed, errorBody{Code: apperr.MethodNotAllowed,
			Message: apperr.New(apperr.MethodNotAllowed, "method %s is not allowed on %s", c.Request.Method, c.Request.URL.Path).Message})
	})

	// Operations: no authentication, no personal data.
	r.GET("/healthz", handleHealthz())
	r.GET("/readyz", handleReadyz(d.Log, d.Ready))
	r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(d.Metrics, promhttp.HandlerOpts{})))
	r.GET("/openapi.yaml", handleOpenAPI())

	// The VASP's own backend: Authorization: Bearer <ENCLAVE_API_KEYS entry>. Each GET names
	// the query parameters it takes (takes, listQuery); any other is 400 naming it.
	v1 := r.Group("/v1", requireAPIKey(d.Config.APIKeys))
	v1.POST("/verifications", handleCreateVerification(d.Log, d.Exchange))
	v1.GET("/verifications", listQuery("role", "result", "symbol", "network", "txHash", "originatingVaspId", "beneficiaryVaspId", "include", "fromDate", "toDate"), handleListVerifications(d.Log, d.Verifications))
	v1.GET("/verifications/:verificationUuid", takes(), handleGetVerification(d.Log, d.Verifications))
	v1.POST("/verifications/:verificationUuid/result", handleAnswer(d.Log, d.Exchange))
	v1.POST("/verifications/tx", handleBody(d.Log, d.Exchange.ReportTx))
	v1.POST("/verifications/error", handleBody(d.Log, d.Exchange.ReportError))
	v1.POST("/verifications/account", handleAnswerOf(d.Log, d.Checks.CheckAccount))
	v1.POST("/verifications/tx/inquiry", handleAnswerOf(d.Log, d.Checks.InquireTx))
	v1.POST("/risk-assessment/chainalysis-kyt", handleAssess[kytjob.Request](d.Log, d.Assessments, d.Waiter, d.Config.HTTPWriteTimeout))
	v1.GET("/risk-assessment/chainalysis-kyt", listQuery("verificationUuid", "status", "apiType", "direction", "fromDate", "toDate"), handleList(d.Log, assessmentFilter, d.Assessments.List))
	v1.GET("/risk-assessment/chainalysis-kyt/alerts", listQuery("level", "source", "alertStatus", "requestId", "verificationUuid", "fromDate", "toDate"), handleList(d.Log, alertFilter, d.Assessments.ListAlerts))
	v1.GET("/risk-assessment/chainalysis-kyt/:requestId", takes(), handleByParam(d.Log, "requestId", d.Assessments.Find))
	v1.GET("/counterparties/:vaspId/chainalysis-kyt", takes(), handleByParam(d.Log, "vaspId", d.Assessments.Counterparty))
	v1.POST("/risk-assessment/chainalysis-address-screening", handleAssess[screening.Request](d.Log, d.Screenings, d.Waiter, d.Config.HTTPWriteTimeout))
	v1.GET("/risk-assessment/chainalysis-address-screening", listQuery("verificationUuid", "status", "risk", "fromDate", "toDate"), handleList(d.Log, screeningFilter, d.Screenings.List))
	v1.GET("/risk-assessment/chainalysis-address-screening/:requestId", takes(), handleByParam(d.Log, "requestId", d.Screenings.Find))
	v1.GET("/callbacks", listQuery("status", "requestId", "verificationUuid"), handleList(d.Log, callbackFilter, d.Callbacks.List))
	v1.POST("/callbacks/:id/redeliver", handleByParam(d.Log, "id", d.Callbacks.Redeliver))
	v1.POST("/callbacks/redeliver", handleRedeliverCallbacks(d.Log, d.Callbacks))
	v1.GET("/peer-messages", listQuery("status", "kind", "verificationUuid"), handleList(d.Log, peerMessageFilter, d.Exchange.ListMessages))
	v1.POST("/peer-messages/:id/redeliver", handleByParam(d.Log, "id", d.Exchange.Redeliver))
	v1.GET("/vasps", takes(), handleListVASPs(d.Log, d.Directory))
	v1.GET("/vasps/self", takes(), handleSelf(d.Directory))

	// Counterparty enclaves: X-Vasp-Id plus a Standard Webhooks signature with that peer's secret.
	var seen func(context.Context, string) error
	if d.Directory != nil {
		seen = d.Directory.Seen
	}
	peer := r.Group("/peer/v1", requirePeerSignature(d.Log, d.Config.Peer, seen))
	peer.POST("/verifications", handlePeer(d.Log, d.Exchange.Receive))
	peer.POST("/verifications/tx", handlePeer(d.Log, withoutBody(d.Exchange.ReceiveTx)))
	peer.POST("/verifications/result", handlePeer(d.Log, withoutBody(d.Exchange.ReceiveResult)))
	peer.POST("/verifications/error", handlePeer(d.Log, withoutBody(d.Exchange.ReceiveError)))
	peer.POST("/verifications/account", handlePeerAnswerOf(d.Log, peerCheck(d.Checks.AnswerAccount)))
	peer.POST("/verifications/tx/inquiry", handlePeerAnswerOf(d.Log, peerCheck(d.Checks.AnswerTxInquiry)))

	// The operator console: its own login, session cookie and role per route
	// (internal/console/routes.go lists them); HTML, never the JSON error envelope.
	if d.Console != nil {
		r.Any("/console", gin.WrapH(d.Console))
		r.Any("/console/*path", gin.WrapH(d.Console))
	}
	return r
}
