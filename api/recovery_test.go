package api

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/require"
)

func TestPanicBecomesInternalErrorWithRequestID(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := gin.New()
	r.Use(withRequestID(), withLogging(log), withRecovery(log))
	r.GET("/boom", func(*gin.Context) { panic("secret detail from deep inside") })

	w := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/boom", nil)
	req.Header.Set("X-Request-Id", "req-42")
	r.ServeHTTP(w, req)

	require.Equal(t, 500, w.Code)
	var body errorBody
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &body))
	require.Equal(t, "INTERNAL-ERROR", body.Code)
	require.Contains(t, body.Message, "req-42")
	require.NotContains(t, w.Body.String(), "secret detail", "the caller never sees a Go error string")
	require.Contains(t, logs.String(), "secret detail", "the operator does")
	require.Contains(t, logs.String(), `"status":500`)
}
