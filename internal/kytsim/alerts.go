package kytsim

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// entityOf returns what the sandbox knows of an address: a re-rating made at run time, the dataset, then (for a stated
// fraction of unknown addresses) a risky category chosen by hash, else nothing (clean).
func (s *Sim) entityOf(address string) *Entity {
	key := addressKey(address)
	if e, ok := s.overrides[key]; ok {
		return &e
	}
	for _, e := range KnownAddresses {
		if addressKey(e.Address) == key {
			e := e
			return &e
		}
	}
	if s.opts.RiskyFraction <= 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	sum := h.Sum64()
	if float64(sum%1_000_000)/1_000_000 >= s.opts.RiskyFraction {
		return nil
	}
	c := riskyCategories[(sum/1_000_000)%uint64(len(riskyCategories))]
	return &Entity{Address: address, Cluster: "Synthetic " + c.Name, Category: c,
		Service: strings.ToUpper(c.Name) + ": Synthetic " + key, Source: "risky fraction"}
}

// raise applies the alert rules to exposure to e and records the alerts. Must hold s.mu.
func (s *Sim) raise(e *Entity, base alertRecord) []*alertRecord {
	if e == nil {
		return nil
	}
	exposure := e.Exposure
	if exposure == "" {
		exposure = "DIRECT"
	}
	amount, ok := new(big.Rat).SetString(base.AmountUSD)
	if !ok {
		amount = new(big.Rat)
	}
	var out []*alertRecord
	for _, rule := range Rules {
		if rule.Category != e.Category || rule.Exposure != exposure || (rule.Direction != "" && rule.Direction != base.Direction) {
			continue
		}
		if amount.Cmp(new(big.Rat).SetInt64(int64(rule.MinUSD))) <= 0 && !(rule.MinUSD == 0 && base.AmountUSD == "") {
			continue
		}
		a := base
		id, _ := uuid.NewUUID() // version 1, as KYT's alert ids are
		a.ID = id.String()
		a.Level, a.Category, a.Exposure, a.Rule = rule.Level, e.Category, exposure, rule
		a.Status, a.StatusAt = "Unreviewed", a.CreatedAt
		if exposure == "DIRECT" {
			a.Service = e.Service
		}
		out = append(out, &a)
		s.alerts = append(s.alerts, &a)
		break // one alert per rule match, the most specific rule first
	}
	return out
}

// alertJSON is one v2 alert, fields in the guide's order.
type alertJSON struct {
	AlertLevel   string      `json:"alertLevel"`
	Category     string      `json:"category"`
	Service      any         `json:"service"`
	ExternalID   string      `json:"externalId"`
	AlertAmount  json.Number `json:"alertAmount"`
	ExposureType string      `json:"exposureType"`
	CategoryID   int         `json:"categoryId"`
}

func alertsView(as []*alertRecord) map[string][]alertJSON {
	list := make([]alertJSON, 0, len(as))
	for _, a := range as {
		list = append(list, alertJSON{AlertLevel: a.Level, Category: a.Category.Name, Service: nilIfEmpty(a.Service),
			ExternalID: a.ID, AlertAmount: numberOrZero(a.AmountUSD), ExposureType: a.Exposure, CategoryID: a.Category.ID})
	}
	return map[string][]alertJSON{"alerts": list}
}

// --- v1 ---

func (s *Sim) listAlerts(r *http.Request, _ []byte) (int, any) {
	q := r.URL.Query()
	limit, offset, err := pageOf(r)
	if err != nil {
		return bad("%v", err)
	}
	var gte, lte *time.Time
	for name, dst := range map[string]**time.Time{"createdAt_gte": &gte, "createdAt_lte": &lte} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				if t, err = time.Parse(time.DateOnly, v); err != nil {
					return bad("%s must be an ISO-8601 date or date-time", name)
				}
			}
			*dst = &t
		}
	}
	order, err := alertOrder(q.Get("sort"))
	if err != nil {
		return bad("%v", err)
	}
	level := q.Get("level")
	if level != "" && level != "SEVERE" && level != "HIGH" && level != "MEDIUM" && level != "LOW" {
		return bad("level must be SEVERE, HIGH, MEDIUM or LOW (in caps)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var match []*alertRecord
	for _, a := range s.alerts {
		if (q.Get("userId") != "" && a.UserID != q.Get("userId")) || (level != "" && a.Level != level) ||
			(q.Get("asset") != "" && a.Asset != q.Get("asset")) || (q.Get("transferReference") != "" && a.Ref != q.Get("transferReference")) ||
			(gte != nil && a.CreatedAt.Before(*gte)) || (lte != nil && a.CreatedAt.After(*lte)) {
			continue
		}
		match = append(match, a)
	}
	sort.SliceStable(match, func(i, j int) bool { return order(match[i], match[j]) })
	data := []map[string]any{}
	for i := offset; i < len(match) && (limit == 0 || len(data) < limit); i++ {
		a := match[i]
		data = append(data, map[string]any{
			"alertAmountUsd": numberOrZero(a.AmountUSD), "transactionHash": nilIfEmpty(a.Tx), "exposureType": a.Exposure,
			"alertStatus": a.Status, "transferReportedAt": a.ReportedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
			"alertIdentifier": a.ID, "transferReference": nilIfEmpty(a.Ref), "alertStatusCreatedBy": nilIfEmpty(a.StatusBy), "valid": true,
			"transferCountWindow": nil, "ruleAsset": nil, "direction": strings.ToUpper(a.Direction),
			"timestamp": a.Timestamp.UTC().Format(time.RFC3339), "period": nil, "windowSize": nil,
			"transferredValuePercentage": json.Number("100.0"), "level": a.Level, "service": nilIfEmpty(a.Service),
			"alertStatusCreatedAt": a.StatusAt.UTC().Format("2006-01-02T15:04:05.000000Z"), "userId": a.UserID,
			"transferCount": nil, "createdAt": a.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"), "alertType": a.Type,
			"transferOutputAddress": nilIfEmpty(a.OutputAddress), "validity": "VALID", "category": a.Category.Name,
			"transactionIndex": a.Idx, "asset": a.Asset, "rule": a.Rule.Text(a.Direction), "minThreshold": a.Rule.MinUSD,
			"maxThreshold": nil, "categoryId": a.Category.ID,
		})
	}
	return http.StatusOK, map[string]any{"total": len(match), "limit": limit, "offset": offset, "data": data}
}

// pageOf reads the v1 pagination parameters: limit (default 100) and offset.
func pageOf(r *http.Request) (limit, offset int, err error) {
	limit = 100
	for name, dst := range map[string]*int{"limit": &limit, "offset": &offset} {
		if v := r.URL.Query().Get(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return 0, 0, fmt.Errorf("%s must be a non-negative integer", name)
			}
			*dst = n
		}
	}
	return limit, offset, nil
}

// alertOrder is the sort parameter of GET /v1/alerts: "timestamp", "createdAt", "level" or
// "alertAmountUsd", then "asc" (the default) or "desc"; none sorts by alertStatusCreatedAt, as
// the reference says.
func alertOrder(v string) (func(a, b *alertRecord) bool, error) {
	field, dir, _ := strings.Cut(strings.TrimSpace(v), " ")
	var less func(a, b *alertRecord) bool
	switch field {
	case "":
		less = func(a, b *alertRecord) bool { return a.StatusAt.Before(b.StatusAt) }
	case "timestamp":
		less = func(a, b *alertRecord) bool { return a.Timestamp.Before(b.Timestamp) }
	case "createdAt":
		less = func(a, b *alertRecord) bool { return a.CreatedAt.Before(b.CreatedAt) }
	case "level":
		rank := map[string]int{"LOW": 0, "MEDIUM": 1, "HIGH": 2, "SEVERE": 3}
		less = func(a, b *alertRecord) bool { return rank[a.Level] < rank[b.Level] }
	case "alertAmountUsd":
		less = func(a, b *alertRecord) bool {
			x, _ := new(big.Rat).SetString(numberOrZero(a.AmountUSD).String())
			y, _ := new(big.Rat).SetString(numberOrZero(b.AmountUSD).String())
			return x != nil && y != nil && x.Cmp(y) < 0
		}
	default:
		return nil, fmt.Errorf("sort must be timestamp, createdAt, level or alertAmountUsd, then asc or desc; got %q", v)
	}
	switch strings.ToLower(strings.TrimSpace(dir)) {
	case "", "asc":
		return less, nil
	case "desc":
		return func(a, b *alertRecord) bool { return less(b, a) }, nil
	}
	return nil, fmt.Errorf("sort direction must be asc or desc; got %q", dir)
}

func (s *Sim) listAssets(*http.Request, []byte) (int, any) {
	symbols := make([]string, 0, len(assets))
	for sym := range assets {
		symbols = append(symbols, sym)
	}
	sort.Strings(symbols)
	out := make([]map[string]string, 0, len(symbols))
	for _, sym := range symbols {
		out = append(out, map[string]string{"symbol": sym, "name": assets[sym].Name})
	}
	return http.StatusOK, out
}
