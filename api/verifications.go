package api

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
)

// pageResponse is every list answer: one page and the count of all matches.
type pageResponse[T any] struct {
	Total  int `json:"total"`
	Limit  int `json:"limit"`
	Offset int `json:"offset"`
	Data   []T `json:"data"`
}

type resultResponse struct {
	Result bool `json:"result"`
}

func handleCreateVerification(log *slog.Logger, svc *exchange.Service) gin.HandlerFunc {
	type response struct {
		VerificationUUID string        `json:"verificationUuid"`
		CreatedAt        jsontime.Time `json:"createdAt"`
	}
	return func(c *gin.Context) {
		var d verification.Draft
		body, err := decode(c, &d)
		if err != nil {
			fail(c, log, err)
			return
		}
		d.IdempotencyKey, d.Body = c.GetHeader(headerIdempotencyKey), body
		v, err := svc.Create(c.Request.Context(), d)
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, response{VerificationUUID: v.UUID, CreatedAt: jsontime.Time{Time: v.CreatedAt}})
	}
}

func handleGetVerification(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := svc.Find(c.Request.Context(), c.Param("verificationUuid"))
		if err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, v.View())
	}
}

func handleListVerifications(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		limit, offset, err := page(c, verification.DefaultLimit, verification.MaxLimit)
		if err != nil {
			fail(c, log, err)
			return
		}
		f := verification.Filter{
			Role: verification.Role(strings.ToUpper(c.Query("role"))), Result: verification.Result(strings.ToUpper(c.Query("result"))), Symbol: c.Query("symbol"),
			Network: c.Query("network"), TxHash: c.Query("txHash"), Limit: limit, Offset: offset,
		}
		switch inc := c.Query("include"); inc {
		case "":
		case "payload":
			f.WithPayload = true
			if c.Query("limit") == "" {
				f.Limit, limit = verification.MaxLimitWithPayload, verification.MaxLimitWithPayload
			}
		default:
			fail(c, log, apperr.Bad("include: want payload, got %q", inc))
			return
		}
		if f.From, f.To, err = dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		vs, total, err := svc.List(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		out := pageResponse[verification.View]{Total: total, Limit: limit, Offset: offset, Data: make([]verification.View, 0, len(vs))}
		for _, v := range vs {
			out.Data = append(out.Data, v.View())
		}
		c.JSON(http.StatusOK, out)
	}
}

// handleBody answers a POST whose JSON body (of type T) one call of the exchange takes, with
// {"result": true}.
func handleBody[T any](log *slog.Logger, do func(context.Context, T) error) gin.HandlerFunc {
	return handleAnswerOf(log, func(ctx context.Context, m T) (resultResponse, error) {
		return resultResponse{Result: true}, do(ctx, m)
	})
}

// handleAnswer takes the beneficiary VASP's late answer to an inbound verification.
func handleAnswer(log *slog.Logger, svc *exchange.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		var m exchange.ResultMessage
		if _, err := decode(c, &m); err != nil {
			fail(c, log, err)
			return
		}
		if m.VerificationUUID != "" && m.VerificationUUID != c.Param("verificationUuid") {
			fail(c, log, apperr.Bad("verificationUuid: the body names %s, the path %s", validate.Quote(m.VerificationUUID), validate.Quote(c.Param("verificationUuid"))))
			return
		}
		m.VerificationUUID = c.Param("verificationUuid")
		if err := svc.Answer(c.Request.Context(), m); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, resultResponse{Result: true})
	}
}

// handlePeer answers a peer route: the body, already verified with the sender's signature,
// decoded as T and given to do with the sender's VASP id; {"result": true} when it is done.
func handlePeer[T any](log *slog.Logger, do func(ctx context.Context, sender string, m T, body []byte) error) gin.HandlerFunc {
	return handlePeerAnswerOf(log, func(ctx context.Context, sender string, m T, body []byte) (resultResponse, error) {
		return resultResponse{Result: true}, do(ctx, sender, m, body)
	})
}

// withoutBody adapts a peer call that does not need the raw body.
func withoutBody[T any](do func(ctx context.Context, sender string, m T) error) func(context.Context, string, T, []byte) error {
	return func(ctx context.Context, sender string, m T, _ []byte) error { return do(ctx, sender, m) }
}

// page reads limit and offset.
func page(c *gin.Context, def, max int) (limit, offset int, err error) {
	limit, offset = def, 0
	if s := c.Query("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > max {
			return 0, 0, apperr.Bad("limit: want a whole number from 1 to %d, got %q", max, s)
		}
	}
	if s := c.Query("offset"); s != "" {
		if offset, err = strconv.Atoi(s); err != nil || offset < 0 {
			return 0, 0, apperr.Bad("offset: want a whole number of 0 or more, got %q", s)
		}
	}
	return limit, offset, nil
}

// dateRange reads fromDate and toDate, the created-at bounds every list takes.
func dateRange(c *gin.Context) (from, to *time.Time, err error) {
	if from, err = timeParam(c, "fromDate", false); err != nil {
		return nil, nil, err
	}
	if to, err = timeParam(c, "toDate", true); err != nil {
		return nil, nil, err
	}
	return from, to, nil
}

// timeParam reads an RFC 3339 time or a date (YYYY-MM-DD; as an upper bound, the whole day).
func timeParam(c *gin.Context, name string, upper bool) (*time.Time, error) {
	s := c.Query(name)
	if s == "" {
		return nil, nil
	}
	bad := apperr.Bad("%s: want a date (2024-01-31) or an RFC 3339 time (2024-01-31T12:00:00Z), got %q", name, s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		// Go reads offsets PostgreSQL does not (beyond ±15:59), and the year 0000.
		if _, off := t.Zone(); off <= -16*3600 || off >= 16*3600 || t.UTC().Year() < 1 {
			return nil, apperr.Bad("%s: the offset must lie within ±15:59 and the year from 0001, got %q", name, s)
		}
		return &t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Year() < 1 {
		return nil, bad
	}
	if upper {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return &t, nil
}
