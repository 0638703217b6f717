package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/callback"
	"github.com/travelrule/enclave/internal/kytjob"
	"github.com/travelrule/enclave/webhook"
)

func handleListAssessments(log *slog.Logger, svc *kytjob.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, offset, err := page(c, 100, 1000)
		if err != nil {
			fail(c, log, err)
			return
		}
		f := kytjob.Filter{VerificationUUID: c.Query("verificationUuid"), Status: c.Query("status"),
			APIType: c.Query("apiType"), Direction: c.Query("direction"), Limit: limit, Offset: offset}
		if f.From, f.To, err = dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		list, total, err := svc.List(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, pageResponse[webhook.KYTResultData]{Total: total, Limit: limit, Offset: offset, Data: list})
	}
}

func handleListAlerts(log *slog.Logger, svc *kytjob.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, offset, err := page(c, 100, 1000)
		if err != nil {
			fail(c, log, err)
			return
		}
		f := kytjob.AlertFilter{Level: c.Query("level"), Source: c.Query("source"), AlertStatus: c.Query("alertStatus"),
			RequestID: c.Query("requestId"), VerificationUUID: c.Query("verificationUuid"), Limit: limit, Offset: offset}
		if f.From, f.To, err = dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		list, total, err := svc.ListAlerts(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, pageResponse[kytjob.AlertItem]{Total: total, Limit: limit, Offset: offset, Data: list})
	}
}

func handleCounterpartyRisk(log *slog.Logger, svc *kytjob.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := svc.Counterparty(c.Request.Context(), c.Param("vaspId"))
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, r)
	}
}

func handleListCallbacks(log *slog.Logger, svc *callback.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, offset, err := page(c, 100, 1000)
		if err != nil {
			fail(c, log, err)
			return
		}
		list, total, err := svc.List(c.Request.Context(), callback.Filter{Status: c.Query("status"), RequestID: c.Query("requestId"), Limit: limit, Offset: offset})
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, pageResponse[callback.Record]{Total: total, Limit: limit, Offset: offset, Data: list})
	}
}

func handleRedeliverCallback(log *slog.Logger, svc *callback.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		r, err := svc.Redeliver(c.Request.Context(), c.Param("id"))
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, r)
	}
}
