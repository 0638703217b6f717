package kytsim

import (
	"encoding/json"
	"math/big"
	"net/http"
	"sort"
	"strings"
	"time"
)

// Monitoring: the world changes under registered transfers. An address re-rated at run time
// (PUT /_sim/addresses/{address}) raises new alerts, created now, on the processed transfers
// that touch it — what KYT does when an address is identified as sanctioned after the fact —
// and an analyst changes an alert's status (PUT /_sim/alerts/{id}). GET /v1/alerts shows both;
// GET /v1/users and /v1/users/{userId} rate each user by its alerts.

// categories are every category the sandbox knows, by name.
var categories = func() map[string]Category {
	m := map[string]Category{}
	for _, c := range []Category{CatChildAbuse, CatDarknet, CatSanctioned, CatScam, CatStolenFunds, CatRansomware,
		CatTerroristFinancing, CatMixing, CatHighRiskExchange, CatGambling, CatHighRiskJuris, CatNoKYCExchange, CatExchange, CatDEX} {
		m[c.Name] = c
	}
	return m
}()

// putAddress re-rates an address: {"category", "cluster", "service"?, "exposureType"?}.
func (s *Sim) putAddress(r *http.Request, body []byte) (int, any) {
	var req struct {
		Category     string `json:"category"`
		Cluster      string `json:"cluster"`
		Service      string `json:"service"`
		ExposureType string `json:"exposureType"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("want {\"category\", \"cluster\", \"service\"?, \"exposureType\"?}: %v", err)
	}
	c, ok := categories[strings.ToLower(strings.TrimSpace(req.Category))]
	if !ok {
		names := make([]string, 0, len(categories))
		for n := range categories {
			names = append(names, n)
		}
		sort.Strings(names)
		return bad("category must be one of %s", strings.Join(names, ", "))
	}
	exposure := strings.ToUpper(strings.TrimSpace(req.ExposureType))
	if exposure != "" && exposure != "DIRECT" && exposure != "INDIRECT" {
		return bad("exposureType must be DIRECT or INDIRECT")
	}
	address := r.PathValue("address")
	e := Entity{Address: address, Cluster: req.Cluster, Category: c, CategoryName: c.Name, Service: req.Service,
		Exposure: exposure, Source: "re-rated at run time"}
	if e.Service == "" {
		e.Service = e.Cluster
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.overrides[addressKey(address)] = e
	var raised []*alertRecord
	now := s.now()
	key := addressKey(address)
	for _, t := range s.transfers {
		if !t.processed || addressKey(t.Counterparty) != key {
			continue
		}
		t.Rated = &e
		out := ""
		if t.OutputAddress != nil {
			out = *t.OutputAddress
		}
		fresh := s.raise(&e, alertRecord{UserID: t.UserID, Asset: t.Asset, Direction: t.Direction, Ref: t.Ref, Tx: t.Tx,
			OutputAddress: out, Idx: t.Idx, Type: "TRANSFER", AmountUSD: deref(t.USDAmount), ReportedAt: t.RegisteredAt,
			CreatedAt: now, Timestamp: mustTime(t.Timestamp, t.RegisteredAt)})
		t.Alerts = append(t.Alerts, fresh...)
		raised = append(raised, fresh...)
	}
	ids := []string{}
	for _, a := range raised {
		ids = append(ids, a.ID)
	}
	return http.StatusOK, map[string]any{"address": e, "alertsRaised": ids}
}

// putAlert changes an alert's status as an analyst would in the KYT UI:
// {"alertStatus": "Dismissed", "alertStatusCreatedBy"?}.
func (s *Sim) putAlert(r *http.Request, body []byte) (int, any) {
	var req struct {
		AlertStatus string `json:"alertStatus"`
		CreatedBy   string `json:"alertStatusCreatedBy"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("want {\"alertStatus\", \"alertStatusCreatedBy\"?}: %v", err)
	}
	switch req.AlertStatus {
	case "Unreviewed", "In Review", "Flagged", "Dismissed":
	default:
		return bad("alertStatus must be Unreviewed, In Review, Flagged or Dismissed")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.alerts {
		if a.ID == r.PathValue("alertIdentifier") {
			a.Status, a.StatusAt, a.StatusBy = req.AlertStatus, s.now(), req.CreatedBy
			return http.StatusOK, map[string]any{"alertIdentifier": a.ID, "alertStatus": a.Status,
				"alertStatusCreatedAt": a.StatusAt.UTC().Format("2006-01-02T15:04:05.000000Z")}
		}
	}
	return http.StatusNotFound, errBody(http.StatusNotFound, "Alert not found: "+r.PathValue("alertIdentifier"))
}

// user is what the sandbox knows of a KYT user: its registrations and its alerts.
type user struct {
	ID                    string
	Created, LastActivity time.Time
	ScoreUpdated          time.Time
	RiskScore             string
	rated                 []ratedTransfer
}

type ratedTransfer struct {
	direction string
	usd       string
	entity    *Entity
}

// users gathers every user from the registrations and alerts. Must hold s.mu.
func (s *Sim) users() map[string]*user {
	out := map[string]*user{}
	seen := func(id string, at time.Time) *user {
		u := out[id]
		if u == nil {
			u = &user{ID: id, Created: at, LastActivity: at, ScoreUpdated: at, RiskScore: "LOW"}
			out[id] = u
		}
		if at.Before(u.Created) {
			u.Created = at
		}
		if at.After(u.LastActivity) {
			u.LastActivity = at
		}
		if at.After(u.ScoreUpdated) {
			u.ScoreUpdated = at
		}
		return u
	}
	for _, t := range s.transfers {
		u := seen(t.UserID, t.RegisteredAt)
		if t.processed {
			u.rated = append(u.rated, ratedTransfer{t.Direction, deref(t.USDAmount), t.Rated})
		}
	}
	for _, a := range s.attempts {
		u := seen(a.UserID, a.RegisteredAt)
		if a.processed {
			u.rated = append(u.rated, ratedTransfer{"sent", deref(a.USDAmount), a.Rated})
		}
	}
	rank := map[string]int{"LOW": 0, "MEDIUM": 1, "HIGH": 2, "SEVERE": 3}
	for _, a := range s.alerts {
		u := out[a.UserID]
		if u == nil {
			continue
		}
		for _, at := range []time.Time{a.CreatedAt, a.StatusAt} {
			if at.After(u.ScoreUpdated) {
				u.ScoreUpdated = at
			}
		}
		// The guide: a user's risk score is the highest level of its alerts not dismissed.
		if a.Status != "Dismissed" && rank[a.Level] > rank[u.RiskScore] {
			u.RiskScore = a.Level
		}
	}
	return out
}

func legacyScore(risk string) string {
	switch risk {
	case "LOW":
		return "green"
	case "MEDIUM":
		return "amber"
	}
	return "red"
}

func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

func (u *user) summary() map[string]any {
	return map[string]any{"userId": u.ID, "score": legacyScore(u.RiskScore), "lastActivity": isoTime(u.LastActivity),
		"scoreUpdatedDate": isoTime(u.ScoreUpdated), "riskScore": u.RiskScore}
}

func (s *Sim) listUsers(r *http.Request, _ []byte) (int, any) {
	limit, offset, err := pageOf(r)
	if err != nil {
		return bad("%v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.users()
	ids := make([]string, 0, len(all))
	for id := range all {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	data := []map[string]any{}
	for i := offset; i < len(ids) && (limit == 0 || len(data) < limit); i++ {
		data = append(data, all[ids[i]].summary())
	}
	return http.StatusOK, map[string]any{"total": len(ids), "limit": limit, "offset": offset, "data": data}
}

func (s *Sim) getUser(r *http.Request, _ []byte) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.users()[r.PathValue("userId")]
	if u == nil {
		return http.StatusNotFound, errBody(http.StatusNotFound, "User not found: "+r.PathValue("userId"))
	}
	out := u.summary()
	out["creationDate"] = isoTime(u.Created)
	type exposure struct {
		Cluster                  map[string]string `json:"cluster"`
		SentIndirectExposure     int64             `json:"sentIndirectExposure"`
		SentDirectExposure       int64             `json:"sentDirectExposure"`
		ReceivedIndirectExposure int64             `json:"receivedIndirectExposure"`
		ReceivedDirectExposure   int64             `json:"receivedDirectExposure"`
	}
	byCluster := map[string]*exposure{}
	var order []string
	for _, t := range u.rated {
		if t.entity == nil || t.entity.Cluster == "" {
			continue
		}
		x := byCluster[t.entity.Cluster]
		if x == nil {
			x = &exposure{Cluster: map[string]string{"name": t.entity.Cluster, "category": t.entity.Category.Name}}
			byCluster[t.entity.Cluster] = x
			order = append(order, t.entity.Cluster)
		}
		v, ok := new(big.Rat).SetString(t.usd)
		if !ok {
			continue
		}
		usd, _ := v.Float64()
		n := int64(usd + 0.5)
		switch {
		case t.direction == "sent" && t.entity.Exposure == "INDIRECT":
			x.SentIndirectExposure += n
		case t.direction == "sent":
			x.SentDirectExposure += n
		case t.entity.Exposure == "INDIRECT":
			x.ReceivedIndirectExposure += n
		default:
			x.ReceivedDirectExposure += n
		}
	}
	details := []*exposure{}
	for _, c := range order {
		details = append(details, byCluster[c])
	}
	out["exposureDetails"] = details
	return http.StatusOK, out
}
