package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/trp"
)

// TRPDeps are what the TRP listener needs.
type TRPDeps struct {
	Log      *slog.Logger
	Exchange *exchange.Service
	// Name and CertPEM are this VASP's identity as GET /identity tells it (ENCLAVE_VASP_NAME,
	// ENCLAVE_TRP_TLS_CERT).
	Name, CertPEM string
	// MinBodyRate is ENCLAVE_HTTP_MIN_BODY_RATE.
	MinBodyRate int
	// Started is when the process started, for GET /uptime.
	Started time.Time
}

// NewTRPHandler returns the TRP listener's routes (DESIGN.md §15): inquiries to our Travel
// Addresses, the per-verification callbacks of TRP transfers, and the discoverability GETs.
// Every route is listed here. Who may call them is settled by mTLS on the listener
// (ENCLAVE_TRP_TLS_CA); a callback route is further known only to the counterparty it was
// given to. Problems are answered with the status TRP implementations use (405, 400, 415, 404,
// 409) and the enclave's {"code","message"} naming the field; never a 500 for bad input.
func NewTRPHandler(d TRPDeps) *gin.Engine {
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	// As the main API: request id, logging around recovery, then the body cap.
	r.Use(withRequestID(), withHeaders(), withLogging(d.Log), withRecovery(d.Log), withBodyLimit(trp.MaxBodyBytes, d.MinBodyRate))
	r.NoRoute(func(c *gin.Context) {
		abort(c, http.StatusNotFound, errorBody{Code: apperr.NotFound, Message: "no TRP route " + c.Request.URL.Path})
	})
	r.NoMethod(func(c *gin.Context) {
		abort(c, http.StatusMethodNotAllowed, errorBody{Code: apperr.MethodNotAllowed, Message: "method: a TRP request is a POST"})
	})

	r.POST("/transfers", handleTRPInquiry(d.Log, d.Exchange))         // a counterparty of the peers file: the wallet is in the IVMS101
	r.POST("/transfers/:wallet", handleTRPInquiry(d.Log, d.Exchange)) // a Travel Address of ours (enclave trp address)
	r.POST("/callbacks/:token", handleTRPCallback(d.Log, d.Exchange))
	r.GET("/identity", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"name": d.Name, "x509": d.CertPEM}) })
	r.GET("/version", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"version": trp.APIVersion, "vendor": "enclave"}) })
	r.GET("/extensions", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"required": []string{}, "supported": []string{}}) })
	r.GET("/uptime", func(c *gin.Context) {
		c.String(http.StatusOK, strconv.FormatInt(int64(time.Since(d.Started).Seconds()), 10))
	})
	return r
}

// checkTRP answers a request whose method or headers TRP refuses, and echoes the TRP headers.
func checkTRP(c *gin.Context) bool {
	if st, err := trp.CheckRequest(c.Request); st != 0 {
		e, _ := apperr.As(err)
		abort(c, st, errorBody{Code: e.Code, Message: e.Message})
		return false
	}
	c.Header(trp.HeaderAPIVersion, trp.APIVersion)
	c.Header(trp.HeaderRequestIdentifier, c.GetHeader(trp.HeaderRequestIdentifier))
	return true
}

// handleTRPInquiry takes an inquiry to the Travel Address of one of our wallets and answers
// {"version"}: the decision follows to the inquiry's callback once our VASP has answered.
func handleTRPInquiry(log *slog.Logger, x *exchange.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !checkTRP(c) {
			return
		}
		body, err := readBody(c)
		if err == nil {
			err = x.ReceiveInquiry(c.Request.Context(), c.Param("wallet"), c.GetHeader(trp.HeaderRequestIdentifier), body)
		}
		if err != nil {
			fail(c, log, err)
			return
		}
		writeTRP(c, http.StatusOK, trp.Resolution{Version: trp.APIVersion})
	}
}

// handleTRPCallback takes a decision or a confirmation about one TRP transfer: 204.
func handleTRPCallback(log *slog.Logger, x *exchange.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !checkTRP(c) {
			return
		}
		body, err := readBody(c)
		if err == nil {
			err = x.ReceiveTRPCallback(c.Request.Context(), c.Param("token"), body)
		}
		if err != nil {
			fail(c, log, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}

func writeTRP(c *gin.Context, status int, v any) {
	b, _ := json.Marshal(v)
	c.Data(status, trp.ContentType, b)
}
