package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
)

// errorBody is the one shape of every error the enclave answers.
type errorBody struct {
	Code     string           `json:"code"`
	Message  string           `json:"message"`
	Problems []apperr.Problem `json:"problems,omitempty"` // every field at fault, after a shape check
}

// status maps an error code to its HTTP status. It is the only place that does.
func status(code string) int {
	switch code {
	case apperr.MissingVerificationUUID, apperr.NotFoundVerification, apperr.UnsupportedRiskAssessment, apperr.BadRequest, apperr.UnknownVASP:
		return http.StatusBadRequest
	case apperr.AccessDenied:
		return http.StatusForbidden
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case apperr.PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case apperr.Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// fail answers err. An apperr.Error is shown as it is; a database that cannot be reached is
// SERVICE-UNAVAILABLE (see unavailable); a client that went away is logged as such, at info;
// anything else is logged with detail and answered INTERNAL-ERROR with the request id, never
// its text.
func fail(c *gin.Context, log *slog.Logger, err error) {
	if e, ok := apperr.As(err); ok {
		abort(c, status(e.Code), errorBody{Code: e.Code, Message: e.Message, Problems: e.Problems})
		return
	}
	id := requestID(c)
	ctx := c.Request.Context()
	switch {
	case clientGone(ctx, err):
		log.InfoContext(ctx, "client went away before its answer", "requestId", id, "route", c.FullPath())
		c.Set(ctxGone, true)
		c.Abort()
		return
	case unavailable(err):
		log.WarnContext(ctx, "database unavailable", "requestId", id, "route", c.FullPath(), "err", err)
		abort(c, http.StatusServiceUnavailable, errorBody{
			Code: apperr.Unavailable, Message: "the database is unavailable; try again in " + retryAfterSeconds + " s"})
		return
	}
	log.ErrorContext(c.Request.Context(), "request failed", "requestId", id, "route", c.FullPath(), "err", err)
	abort(c, http.StatusInternalServerError, errorBody{
		Code: apperr.Internal, Message: "internal error; quote request id " + id + " to your operator",
	})
}

// abort answers the error e and keeps it for the request's log line, so an operator sees
// which code and message a client got without the body being logged. Refused before its body
// was read (403, 404, 413), the request is its connection's last and the body is not read.
func abort(c *gin.Context, status int, e errorBody) {
	if status == http.StatusServiceUnavailable {
		c.Header("Retry-After", retryAfterSeconds)
	}
	closeUnread(c)
	c.Set(ctxError, e)
	c.AbortWithStatusJSON(status, e)
}

// deny answers the VerifyVASP AccessDenied; why is for the log line only.
func deny(c *gin.Context, why string) {
	c.Set(ctxDenied, why)
	abort(c, http.StatusForbidden, accessDenied)
}

// accessDenied is the VerifyVASP answer to a bad key or a bad peer signature.
var accessDenied = errorBody{Code: apperr.AccessDenied, Message: "AccessDenied"}

// readBody reads the whole request body, which the body-limit middleware has capped.
func readBody(c *gin.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request.Body)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, apperr.New(apperr.PayloadTooLarge, "request body is larger than %d bytes", tooBig.Limit)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, apperr.Bad("request body arrived too slowly (after %s, at least %d bytes a second)", bodyGrace, paceOf(c))
	}
	if err != nil {
		return nil, apperr.Bad("request body could not be read")
	}
	return b, nil
}

// decode reads the body into v, explaining JSON problems in terms of the request's fields, and
// returns the body as received (an Idempotency-Key compares it with the first request's).
func decode(c *gin.Context, v any) ([]byte, error) {
	b, err := readBody(c)
	if err != nil {
		return nil, err
	}
	return b, decodeJSON(b, v)
}

func decodeJSON(b []byte, v any) error {
	if len(strings.TrimSpace(string(b))) == 0 {
		return apperr.Bad("request body is empty; want a JSON object")
	}
	err := json.Unmarshal(b, v)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return checkStorable(b)
	case errors.As(err, &syntax):
		return apperr.Bad("request body is not valid JSON (at byte %d)", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return apperr.Bad("%s: want %s, got %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &typ):
		return apperr.Bad("request body: want a JSON object, got %s", typ.Value)
	default:
		return apperr.Bad("request body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	default:
		return fmt.Sprintf("a %s", goKind)
	}
}
