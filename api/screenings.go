package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/screening"
	"github.com/travelrule/enclave/webhook"
)

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
