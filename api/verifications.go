package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/exchange"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/validate"
	"github.com/travelrule/enclave/internal/verification"
)

// MaxPageBytes bounds a list answer's body, as limit bounds its rows: a page whose rows would
// pass it (twenty IVMS101 payloads of 128 KiB of '<' are 15 MiB of JSON escapes) stops at the
// row before, with truncated true and next continuing from there. A single row larger than
// it is still answered, alone.
const MaxPageBytes = 4 << 20

// pageResponse is every list answer: one page, the count of all matches, and the cursor of
// the next page (null on the last).
type pageResponse struct {
	Total          int     `json:"total"`
	TotalEstimated bool    `json:"totalEstimated"`
	Limit          int     `json:"limit"`
	Offset         int     `json:"offset"`
	Next           *string `json:"next"`
	// Truncated says the page stopped before limit rows to stay within MaxPageBytes; next
	// continues with the rows left out.
	Truncated bool              `json:"truncated,omitempty"`
	Data      []json.RawMessage `json:"data"`
}

// newPage frames rows as one page of at most MaxPageBytes: each row is encoded once, and the
// rows that would pass the bound are left to the next page (sqlpage.Page.Cut).
func newPage[T any](p sqlpage.Page, limit int, rows []T) (pageResponse, error) {
	out := pageResponse{Total: p.Total, TotalEstimated: p.Estimated, Limit: limit, Offset: p.Offset, Data: make([]json.RawMessage, 0, len(rows))}
	size := 0
	for i, r := range rows {
		b, err := json.Marshal(r)
		if err != nil {
			return out, fmt.Errorf("encode row %d of a page: %w", i, err)
		}
		if size += len(b) + 1; size > MaxPageBytes && i > 0 {
			p, out.Truncated = p.Cut(i), true
			break
		}
		out.Data = append(out.Data, b)
	}
	if p.Next != "" {
		out.Next = &p.Next
	}
	return out, nil
}

// answerPage answers one page of rows (newPage), or the error of framing it.
func answerPage[T any](c *gin.Context, log *slog.Logger, p sqlpage.Page, limit int, rows []T) {
	out, err := newPage(p, limit, rows)
	if err != nil {
		fail(c, log, err)
		return
	}
	c.JSON(http.StatusOK, out)
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
		p, err := page(c, verification.DefaultLimit, verification.MaxLimit)
		if err != nil {
			fail(c, log, err)
			return
		}
		f := verification.Filter{
			Role: verification.Role(strings.ToUpper(c.Query("role"))), Result: verification.Result(strings.ToUpper(c.Query("result"))), Symbol: c.Query("symbol"),
			Network: c.Query("network"), TxHash: c.Query("txHash"), OriginatingVaspID: c.Query("originatingVaspId"),
			BeneficiaryVaspID: c.Query("beneficiaryVaspId"), Page: p,
		}
		switch inc := c.Query("include"); inc {
		case "":
		case "payload":
			f.WithPayload = true
			if c.Query("limit") == "" {
				f.Page.Limit = verification.MaxLimitWithPayload
			}
		default:
			fail(c, log, apperr.Bad("include: want payload, got %q", inc))
			return
		}
		if f.From, f.To, err = dateRange(c); err != nil {
			fail(c, log, err)
			return
		}
		vs, pg, err := svc.List(c.Request.Context(), f)
		if err != nil {
			fail(c, log, err)
			return
		}
		data := make([]verification.View, 0, len(vs))
		for _, v := range vs {
			logPayloadError(c, log, v)
			data = append(data, v.View())
		}
		answerPage(c, log, pg, f.Page.Limit, data)
	}
}

// logPayloadError logs, with the verification's uuid only, that its payload was answered null
// with a payloadError: an operator learns which row needs its keyset.
func logPayloadError(c *gin.Context, log *slog.Logger, v verification.Verification) {
	if v.PayloadError != "" {
		log.WarnContext(c.Request.Context(), "a verification's payload does not open; answered with payload null and payloadError",
			"requestId", requestID(c), "verificationUuid", v.UUID)
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

// page reads what every list takes: limit, and where the page starts, by cursor (the `next`
// of the previous page) or, for compatibility, by offset (at most sqlpage.MaxOffset: skipping
// rows reads them all); and count=exact, an exact total however many rows match.
func page(c *gin.Context, def, max int) (sqlpage.Request, error) {
	r := sqlpage.Request{Limit: def, Cursor: c.Query("cursor")}
	var err error
	if s := c.Query("limit"); s != "" {
		if r.Limit, err = strconv.Atoi(s); err != nil || r.Limit < 1 || r.Limit > max {
			return r, apperr.Bad("limit: want a whole number from 1 to %d, got %q", max, s)
		}
	}
	if s := c.Query("offset"); s != "" {
		if r.Cursor != "" {
			return r, apperr.Bad("cursor and offset: give one or the other; a cursor already says where its page starts")
		}
		if r.Offset, err = strconv.Atoi(s); err != nil || r.Offset < 0 || r.Offset > sqlpage.MaxOffset {
			return r, apperr.Bad("offset: want a whole number from 0 to %d, got %q; page deeper with cursor, the `next` of each answer",
				sqlpage.MaxOffset, s)
		}
	}
	switch s := c.Query("count"); s {
	case "":
	case "exact":
		r.Exact = true
	default:
		return r, apperr.Bad("count: want exact, got %q", s)
	}
	return r, nil
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
