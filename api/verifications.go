package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/travelrule/enclave/internal/apperr"
	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/sqlpage"
	"github.com/travelrule/enclave/internal/verification"
)

// verificationResponse is a verification as the API shows it.
type verificationResponse struct {
	VerificationUUID   string          `json:"verificationUuid"`
	Role               string          `json:"role"`
	OriginatingVaspID  string          `json:"originatingVaspId"`
	BeneficiaryVaspID  string          `json:"beneficiaryVaspId"`
	AssetInfo          assetInfo       `json:"assetInfo"`
	OriginatorAddress  *string         `json:"originatorAddress"`
	BeneficiaryAddress string          `json:"beneficiaryAddress"`
	Payload            json.RawMessage `json:"payload,omitempty"` // left out of lists unless include=payload
	TxHash             *string         `json:"txHash"`
	Vout               *int            `json:"vout"`
	OrderedAt          *jsontime.Time  `json:"orderedAt"`
	CreatedAt          jsontime.Time   `json:"createdAt"`
	UpdatedAt          jsontime.Time   `json:"updatedAt"`
}

type assetInfo struct {
	Symbol               string  `json:"symbol"`
	Network              *string `json:"network"`
	Amount               string  `json:"amount"`
	TradePrice           *string `json:"tradePrice,omitempty"`
	TradeCurrency        *string `json:"tradeCurrency,omitempty"`
	TradeISODateTime     *string `json:"tradeISODateTime,omitempty"`
	IsExceedingThreshold *bool   `json:"isExceedingThreshold,omitempty"`
}

func toVerificationResponse(v verification.Verification) verificationResponse {
	return verificationResponse{
		VerificationUUID: v.UUID, Role: string(v.Role),
		OriginatingVaspID: v.OriginatingVaspID, BeneficiaryVaspID: v.BeneficiaryVaspID,
		AssetInfo: assetInfo{
			Symbol: v.Asset, Network: opt(v.Network), Amount: v.Amount, TradePrice: opt(v.TradePrice),
			TradeCurrency: opt(v.TradeCurrency), TradeISODateTime: opt(v.TradeISODateTime),
			IsExceedingThreshold: v.IsExceedingThreshold,
		},
		OriginatorAddress: opt(v.OriginatorAddress), BeneficiaryAddress: v.BeneficiaryAddress,
		Payload: v.Payload, TxHash: opt(v.TxHash), Vout: v.Vout, OrderedAt: jsontime.Of(v.OrderedAt),
		CreatedAt: jsontime.Time{Time: v.CreatedAt}, UpdatedAt: jsontime.Time{Time: v.UpdatedAt},
	}
}

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// pageResponse is every list answer: one page, the count of all matches, and the cursor of
// the next page (null on the last).
type pageResponse[T any] struct {
	Total          int     `json:"total"`
	TotalEstimated bool    `json:"totalEstimated"`
	Limit          int     `json:"limit"`
	Offset         int     `json:"offset"`
	Next           *string `json:"next"`
	Data           []T     `json:"data"`
}

func newPage[T any](p sqlpage.Page, limit int, data []T) pageResponse[T] {
	out := pageResponse[T]{Total: p.Total, TotalEstimated: p.Estimated, Limit: limit, Offset: p.Offset, Data: data}
	if p.Next != "" {
		out.Next = &p.Next
	}
	return out
}

type resultResponse struct {
	Result bool `json:"result"`
}

func handleCreateVerification(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
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
		v, err := svc.CreateOutgoing(c.Request.Context(), d)
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
		c.JSON(http.StatusOK, toVerificationResponse(v))
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
			Role: verification.Role(strings.ToUpper(c.Query("role"))), Symbol: c.Query("symbol"),
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
		data := make([]verificationResponse, 0, len(vs))
		for _, v := range vs {
			data = append(data, toVerificationResponse(v))
		}
		c.JSON(http.StatusOK, newPage(pg, f.Page.Limit, data))
	}
}

func handleReportTx(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		var r verification.TxReport
		if _, err := decode(c, &r); err != nil {
			fail(c, log, err)
			return
		}
		if _, err := svc.ReportTx(c.Request.Context(), r); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, resultResponse{Result: true})
	}
}

func handlePeerVerification(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		body := c.MustGet(ctxBody).([]byte)
		var d verification.Draft
		if err := decodeJSON(body, &d); err != nil {
			fail(c, log, err)
			return
		}
		if _, err := svc.ReceiveIncoming(c.Request.Context(), c.GetString(ctxPeer), d, body); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, resultResponse{Result: true})
	}
}

func handlePeerTxReport(log *slog.Logger, svc *verification.Service) gin.HandlerFunc {
	return func(c *gin.Context) {
		var r verification.TxReport
		if err := decodeJSON(c.MustGet(ctxBody).([]byte), &r); err != nil {
			fail(c, log, err)
			return
		}
		if _, err := svc.ReceiveTxReport(c.Request.Context(), c.GetString(ctxPeer), r); err != nil {
			fail(c, log, err)
			return
		}
		c.JSON(http.StatusOK, resultResponse{Result: true})
	}
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
