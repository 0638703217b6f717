package kytsim

import (
	"encoding/json"
	"net/http"
	"strings"
)

func (s *Sim) registerAttempt(r *http.Request, body []byte) (int, any) {
	var req struct {
		Network           string          `json:"network"`
		Asset             string          `json:"asset"`
		Address           string          `json:"address"`
		AttemptIdentifier string          `json:"attemptIdentifier"`
		AssetAmount       json.RawMessage `json:"assetAmount"`
		AttemptTimestamp  string          `json:"attemptTimestamp"`
		AssetPrice        json.RawMessage `json:"assetPrice"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("Bad Request: the body is not the JSON expected: %v", err)
	}
	userID := r.PathValue("userId")
	switch {
	case strings.TrimSpace(userID) == "":
		return bad("userId is required")
	case req.Network == "":
		return bad("network is required")
	case req.Asset == "":
		return bad("asset is required")
	case req.Address == "":
		return bad("address is required")
	case req.AttemptIdentifier == "":
		return bad("attemptIdentifier is required")
	case len(req.AssetAmount) == 0 || string(req.AssetAmount) == "null":
		return bad("assetAmount is required")
	case req.AttemptTimestamp == "":
		return bad("attemptTimestamp is required")
	}
	n, ok := findNetwork(req.Network)
	if !ok {
		return bad("network %q is not supported", req.Network)
	}
	if !validAddress(n, req.Address) {
		return bad("address %q is not a valid %s address", req.Address, n.Name)
	}
	amount, err := decimalText(req.AssetAmount)
	if err != nil || amount == "" {
		return bad("assetAmount must be a number")
	}
	price, err := decimalText(req.AssetPrice)
	if err != nil {
		return bad("assetPrice: %v", err)
	}
	id := nameUUID("attempt", userID, req.AttemptIdentifier)

	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.attempts[id]
	if !exists {
		now := s.now()
		a = &attempt{UserID: userID, NetworkAsGiven: req.Network, Asset: req.Asset, Address: req.Address,
			AttemptIdentifier: req.AttemptIdentifier, AssetAmount: req.AssetAmount, AssetPrice: price,
			ExternalID: id, RegisteredAt: now, ReadyAt: now.Add(s.opts.AttemptDelay)}
		s.attempts[id] = a
	}
	return http.StatusOK, s.attemptView(a)
}

// attemptJSON is a withdrawal attempt as KYT writes it, fields in the guide's order.
type attemptJSON struct {
	Network           string          `json:"network"`
	Asset             string          `json:"asset"`
	Address           string          `json:"address"`
	AttemptIdentifier string          `json:"attemptIdentifier"`
	AssetAmount       json.RawMessage `json:"assetAmount"`
	USDAmount         any             `json:"usdAmount"`
	UpdatedAt         *string         `json:"updatedAt"`
	ExternalID        string          `json:"externalId"`
}

func (s *Sim) attemptView(a *attempt) attemptJSON {
	v := attemptJSON{Network: a.NetworkAsGiven, Asset: a.Asset, Address: a.Address, AttemptIdentifier: a.AttemptIdentifier,
		AssetAmount: a.AssetAmount, ExternalID: a.ExternalID}
	if s.processAttempt(a) {
		updated := timeText(a.ReadyAt)
		v.USDAmount, v.UpdatedAt = numberOrNil(a.USDAmount), &updated
	}
	return v
}

func (s *Sim) processAttempt(a *attempt) bool {
	if a.processed {
		return true
	}
	if s.now().Before(a.ReadyAt) {
		return false
	}
	a.processed = true
	amount, _ := decimalText(a.AssetAmount)
	a.USDAmount = usd(amount, a.Asset, a.AssetPrice)
	a.Rated = s.entityOf(a.Address)
	a.Alerts = s.raise(a.Rated, alertRecord{UserID: a.UserID, Asset: a.Asset, Direction: "sent",
		OutputAddress: a.Address, Type: "WITHDRAWAL_ATTEMPT", AmountUSD: deref(a.USDAmount), ReportedAt: a.RegisteredAt,
		CreatedAt: a.ReadyAt, Timestamp: a.RegisteredAt})
	return true
}
