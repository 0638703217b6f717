package kytsim

import (
	"encoding/json"
	"net/http"
)

func (s *Sim) getFaults(*http.Request, []byte) (int, any) {
	return http.StatusOK, s.Faults()
}

func (s *Sim) putFaults(_ *http.Request, body []byte) (int, any) {
	var f Faults
	if err := json.Unmarshal(body, &f); err != nil {
		return bad("want {\"errorRate\",\"rateLimitRate\",\"retryAfterSeconds\",\"latencyMs\",\"down\"}: %v", err)
	}
	if f.ErrorRate < 0 || f.RateLimitRate < 0 || f.ErrorRate+f.RateLimitRate > 1 || f.LatencyMillis < 0 || f.RetryAfterSeconds < 0 {
		return bad("rates must be fractions from 0 to 1 adding up to at most 1; latency and Retry-After at least 0")
	}
	s.SetFaults(f)
	return http.StatusOK, f
}

// getAddresses lists every address the sandbox rates, with both its ratings: the KYT alert
// story (category, cluster, service, exposure) and its Address Screening answer.
func (s *Sim) getAddresses(*http.Request, []byte) (int, any) {
	type rated struct {
		Entity
		Screening any `json:"screening"`
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []rated
	seen := map[string]bool{}
	add := func(e Entity) {
		e.CategoryName = e.Category.Name
		if e.Exposure == "" {
			e.Exposure = "DIRECT"
		}
		seen[addressKey(e.Address)] = true
		out = append(out, rated{Entity: e, Screening: s.entityView(e.Address)})
	}
	for _, e := range s.overrides {
		add(e)
	}
	for _, e := range KnownAddresses {
		if !seen[addressKey(e.Address)] {
			add(*s.entityOf(e.Address))
		}
	}
	for _, a := range exampleAddresses {
		if !seen[addressKey(a)] {
			seen[addressKey(a)] = true
			out = append(out, rated{Entity: Entity{Address: a, Source: "Address Screening / Entities API example"}, Screening: s.entityView(a)})
		}
	}
	return http.StatusOK, map[string]any{"addresses": out}
}

func (s *Sim) postTransaction(_ *http.Request, body []byte) (int, any) {
	var req struct {
		Tx           string `json:"tx"`
		InputAddress string `json:"inputAddress"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Tx == "" || req.InputAddress == "" {
		return bad("want {\"tx\", \"inputAddress\"}")
	}
	s.SetTransactionSender(req.Tx, req.InputAddress)
	return http.StatusOK, req
}
