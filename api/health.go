package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	enclave "github.com/travelrule/enclave"
	"github.com/travelrule/enclave/db/schema"
	"github.com/travelrule/enclave/internal/apperr"
)

func handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
}

func handleReadyz(log *slog.Logger, ready func(context.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := ready(c.Request.Context()); err != nil {
			log.Warn("not ready", "err", err)
			msg := "not ready: database unreachable"
			if errors.Is(err, schema.ErrNotMigrated) {
				msg = "not ready: " + err.Error()
			}
			c.JSON(http.StatusServiceUnavailable, errorBody{Code: apperr.Unavailable, Message: msg})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	}
}

func handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", enclave.OpenAPI) }
}
