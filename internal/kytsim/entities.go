package kytsim

import (
	"embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"time"
)

// The Entities API (Address Screening): POST /v2/entities registers an address, GET
// /v2/entities/{address} answers its risk, "Entity not found" until it is registered. The
// addresses the reference documents show are answered with the documents' own JSON; every
// other address is rated from the same dataset KYT's alerts come from, so one address tells
// one story in both products.

// entityExamples are the documents' answers, one file per address. Where the two documents
// answer differently for one address, the file is the answer that agrees with the dataset
// (the Lazarus address is a "sanctioned entity" in KYT's categories: the Entities API's
// answer; 0x2337… has high risk jurisdiction exposure: the Address Screening answer).
//
//go:embed entities/*.json
var entityExamples embed.FS

// examples are the documents' answers by addressKey, and the addresses as the documents write
// them, read once.
var examples, exampleAddresses = func() (map[string]json.RawMessage, []string) {
	m := map[string]json.RawMessage{}
	var addrs []string
	files, _ := entityExamples.ReadDir("entities")
	for _, f := range files {
		b, err := entityExamples.ReadFile("entities/" + f.Name())
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		a := strings.TrimSuffix(f.Name(), ".json")
		m[addressKey(a)] = b
		addrs = append(addrs, a)
	}
	return m, addrs
}()

func exampleEntity(address string) (json.RawMessage, bool) {
	b, ok := examples[addressKey(address)]
	return b, ok
}

// entityNotFound is the API's answer for an address not registered.
const entityNotFound = "Entity not found. Please be sure to register the Entity."

// riskOf is the Address Screening risk of an entity category, after Chainalysis's starter
// settings.
func riskOf(c Category) string {
	switch c {
	case CatSanctioned, CatChildAbuse, CatTerroristFinancing, CatRansomware:
		return "Severe"
	case CatDarknet, CatScam, CatStolenFunds, CatMixing, CatHighRiskJuris:
		return "High"
	case CatHighRiskExchange, CatNoKYCExchange:
		return "Medium"
	}
	return "Low"
}

func (s *Sim) registerEntity(_ *http.Request, body []byte) (int, any) {
	var req struct {
		Address *string `json:"address"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, map[string]any{"message": "Invalid request body: " + err.Error()}
	}
	if req.Address == nil || strings.TrimSpace(*req.Address) == "" {
		return http.StatusBadRequest, map[string]any{"message": "address is required"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.entities[addressKey(*req.Address)]; !ok {
		s.entities[addressKey(*req.Address)] = &entityState{RegisteredAt: s.now()}
	}
	return http.StatusOK, map[string]any{"address": *req.Address}
}

func (s *Sim) getEntity(r *http.Request, _ []byte) (int, any) {
	address := r.PathValue("address")
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.entities[addressKey(address)]
	if ok && s.faults.EntityNotFound > 0 {
		s.faults.EntityNotFound--
		ok = false
	}
	if !ok {
		return http.StatusNotFound, map[string]any{"message": entityNotFound}
	}
	if st.Reads++; st.Reads <= s.opts.EntityPendingReads {
		status := "PENDING"
		if st.Reads > 1 {
			status = "IN_PROGRESS"
		}
		return http.StatusOK, map[string]any{"address": address, "risk": nil, "riskReason": nil, "cluster": nil,
			"addressIdentifications": []any{}, "exposures": []any{}, "triggers": []any{}, "status": status}
	}
	return http.StatusOK, s.entityView(address)
}

// entityView is the risk assessment of address. Must hold s.mu.
func (s *Sim) entityView(address string) any {
	if _, changed := s.overrides[addressKey(address)]; !changed {
		if b, ok := exampleEntity(address); ok {
			return json.RawMessage(b)
		}
	}
	e := s.entityOf(address)
	out := entityJSON{Address: address, Risk: "Low", AddressIdentifications: []identificationJSON{}, Exposures: []exposureJSON{},
		Triggers: []triggerJSON{}, Status: "COMPLETE"}
	if e == nil {
		return out
	}
	cat := e.Category.Name
	out.Risk = riskOf(e.Category)
	if e.Cluster != "" {
		out.Cluster = &clusterJSON{Name: e.Cluster, Category: cat}
	}
	if i := strings.Index(e.Service, ": "); i > 0 && strings.EqualFold(e.Service[:i], cat) {
		out.AddressIdentifications = append(out.AddressIdentifications, identificationJSON{Name: e.Service, Category: cat,
			Description: fmt.Sprintf("This specific address %s within the cluster has been identified as %s.", address, strings.TrimSpace(e.Service[i+2:]))})
	}
	exposure := "direct"
	if e.Exposure == "INDIRECT" {
		exposure = "indirect"
	}
	h := fnv.New32a()
	h.Write([]byte(addressKey(address)))
	value := json.Number(fmt.Sprintf("%d.%05d", 1000+h.Sum32()%9_000_000, h.Sum32()%100000))
	out.Exposures = append(out.Exposures, exposureJSON{Category: cat, Value: value, ExposureType: exposure, Direction: "both_directions"})
	if out.Risk != "Low" {
		reason := "Identified as " + titleCase(cat)
		if exposure == "indirect" {
			reason = "> 0% Indirect Exposure To " + titleCase(cat)
		}
		out.RiskReason = &reason
		out.Triggers = append(out.Triggers, triggerJSON{Category: cat, Percentage: "100.000000",
			Message:       fmt.Sprintf("> 0%% %sexposure to %s", map[string]string{"direct": "", "indirect": "indirect "}[exposure], cat),
			RuleTriggered: ruleJSON{Risk: out.Risk, MinThreshold: "0.0", MaxThreshold: "100.0", ExposureType: exposure, Direction: "both_directions"}})
	}
	return out
}

func titleCase(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		words[i] = strings.ToUpper(w[:1]) + w[1:]
	}
	return strings.Join(words, " ")
}

// entityState is what the sandbox remembers of a registered address.
type entityState struct {
	RegisteredAt time.Time
	Reads        int
}

// entityJSON is GET /v2/entities/{address}, fields in the documents' order.
type entityJSON struct {
	Address                string               `json:"address"`
	Risk                   string               `json:"risk"`
	RiskReason             *string              `json:"riskReason"`
	Cluster                *clusterJSON         `json:"cluster"`
	AddressIdentifications []identificationJSON `json:"addressIdentifications"`
	Exposures              []exposureJSON       `json:"exposures"`
	Triggers               []triggerJSON        `json:"triggers"`
	Status                 string               `json:"status"`
}

type clusterJSON struct {
	Name     string `json:"name"`
	Category string `json:"category"`
}

type identificationJSON struct {
	Name        string `json:"name"`
	Category    string `json:"category"`
	Description string `json:"description"`
}

type exposureJSON struct {
	Category     string      `json:"category"`
	Value        json.Number `json:"value"`
	ExposureType string      `json:"exposureType"`
	Direction    string      `json:"direction"`
}

type triggerJSON struct {
	Category      string      `json:"category"`
	Percentage    json.Number `json:"percentage"`
	Message       string      `json:"message"`
	RuleTriggered ruleJSON    `json:"ruleTriggered"`
}

type ruleJSON struct {
	Risk         string      `json:"risk"`
	MinThreshold json.Number `json:"minThreshold"`
	MaxThreshold json.Number `json:"maxThreshold"`
	ExposureType string      `json:"exposureType"`
	Direction    string      `json:"direction"`
}
