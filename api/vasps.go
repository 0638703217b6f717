package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/exchange"
)

// handleListVASPs answers the counterparties of the peers file with their health.
func handleListVASPs(log *slog.Logger, dir *exchange.Directory) gin.HandlerFunc {
	type response struct {
		VASPs []exchange.Counterparty `json:"vasps"`
	}
	return func(c *gin.Context) {
		list, err := dir.List(c.Request.Context())
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, response{VASPs: list})
	}
}

// handleSelf answers this VASP's id and name.
func handleSelf(dir *exchange.Directory) gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, dir.Self()) }
}
