package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/internal/outbox"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/internal/sqlpage"
)

// handleByParam answers a route about one thing named by the path parameter param: what get
// returns for it, or its error.
func handleByParam[T any](log *slog.Logger, param string, get func(context.Context, string) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := get(c.Request.Context(), c.Param(param))
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}

// handleList answers a list route: a page as page reads it (limit default 100, at most 1000),
// the route's own filters read by filter, and one page of list.
func handleList[F, T any](log *slog.Logger, filter func(c *gin.Context, p sqlpage.Request) (F, error),
	list func(context.Context, F) ([]T, sqlpage.Page, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		p, err := page(c, 100, 1000)
		if err != nil {
			fail(c, log, err)
			return
		}
		f, err := filter(c, p)
		if err != nil {
			fail(c, log, err)
			return
		}
		rows, pg, err := list(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		answerPage(c, log, pg, p.Limit, rows)
	}
}

func assessmentFilter(c *gin.Context, p sqlpage.Request) (kytjob.Filter, error) {
	f := kytjob.Filter{VerificationUUID: c.Query("verificationUuid"), Status: c.Query("status"),
		APIType: c.Query("apiType"), Direction: c.Query("direction"), Page: p}
	var err error
	f.From, f.To, err = dateRange(c)
	return f, err
}

func alertFilter(c *gin.Context, p sqlpage.Request) (kytjob.AlertFilter, error) {
	f := kytjob.AlertFilter{Level: c.Query("level"), Source: c.Query("source"), AlertStatus: c.Query("alertStatus"),
		RequestID: c.Query("requestId"), VerificationUUID: c.Query("verificationUuid"), Page: p}
	var err error
	f.From, f.To, err = dateRange(c)
	return f, err
}

func screeningFilter(c *gin.Context, p sqlpage.Request) (screening.Filter, error) {
	f := screening.Filter{VerificationUUID: c.Query("verificationUuid"), Status: c.Query("status"), Risk: c.Query("risk"), Page: p}
	var err error
	f.From, f.To, err = dateRange(c)
	return f, err
}

func callbackFilter(c *gin.Context, p sqlpage.Request) (callback.Filter, error) {
	return callback.Filter{Status: c.Query("status"), RequestID: c.Query("requestId"), VerificationUUID: c.Query("verificationUuid"),
		Page: p}, nil
}

func peerMessageFilter(c *gin.Context, p sqlpage.Request) (exchange.Filter, error) {
	return exchange.Filter{Status: c.Query("status"), Kind: c.Query("kind"), VerificationUUID: c.Query("verificationUuid"),
		Page: p}, nil
}

// handleRedeliverCallbacks redelivers the callbacks a filter selects (callback.RedeliverWhere):
// the list's filters in a JSON body, at most max of them (default and bound
// callback.MaxRedeliver), each audited in the log.
func handleRedeliverCallbacks(log *slog.Logger, svc *callback.Service) gin.HandlerFunc {
	type request struct {
		Status           string `json:"status"`
		RequestID        string `json:"requestId"`
		VerificationUUID string `json:"verificationUuid"`
		Max              *int   `json:"max"`
	}
	type response struct {
		Redelivered int                  `json:"redelivered"`
		More        bool                 `json:"more"`
		Callbacks   []outbox.Redelivered `json:"callbacks"`
	}
	return func(c *gin.Context) {
		var q request
		if _, err := decode(c, &q); err != nil {
			fail(c, log, err)
			return
		}
		max := callback.MaxRedeliver
		if q.Max != nil {
			max = *q.Max
		}
		done, more, err := svc.RedeliverWhere(c.Request.Context(),
			callback.Filter{Status: q.Status, RequestID: q.RequestID, VerificationUUID: q.VerificationUUID}, max)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, response{Redelivered: len(done), More: more, Callbacks: done})
	}
}
