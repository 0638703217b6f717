package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/assessment"
	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/webhook"
)

func handleScreen(log *slog.Logger, svc *screening.Service, w *assessment.Waiter) gin.HandlerFunc {
	type whole struct {
		RequestID string `json:"requestId"`
		webhook.ScreeningResultData
	}
	find := func(ctx context.Context, id string) (any, error) {
		d, err := svc.Find(ctx, id)
		return whole{id, d}, err
	}
	return func(c *gin.Context) {
		wait, err := preferWait(c)
		if err != nil {
			fail(c, log, err)
			return
		}
		var r screening.Request
		body, err := decode(c, &r)
		if err != nil {
			fail(c, log, err)
			return
		}
		r.IdempotencyKey, r.Body, r.Notify = c.GetHeader(headerIdempotencyKey), body, wait > 0
		id, err := svc.Accept(c.Request.Context(), r)
		if err != nil {
			fail(c, log, err)
			return
		}
		accepted(c, w, id, wait, svc.Terminal, find)
	}
}

func handleGetScreening(log *slog.Logger, svc *screening.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		d, err := svc.Find(c.Request.Context(), c.Param("requestId"))
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, d)
	}
}

func handleListScreenings(log *slog.Logger, svc *screening.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, offset, err := page(c, 100, 1000)
		if err != nil {
			fail(c, log, err)
			return
		}
		f := screening.Filter{VerificationUUID: c.Query("verificationUuid"), Status: c.Query("status"), Risk: c.Query("risk"),
			Limit: limit, Offset: offset}
		if f.From, f.To, err = dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		list, total, err := svc.List(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, pageResponse[webhook.ScreeningResultData]{Total: total, Limit: limit, Offset: offset, Data: list})
	}
}
