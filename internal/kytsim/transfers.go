package kytsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (s *Sim) registerTransfer(r *http.Request, body []byte) (int, any) {
	var req struct {
		Network           string          `json:"network"`
		Asset             string          `json:"asset"`
		TransferReference string          `json:"transferReference"`
		Direction         string          `json:"direction"`
		TransferTimestamp string          `json:"transferTimestamp"`
		AssetAmount       json.RawMessage `json:"assetAmount"`
		OutputAddress     string          `json:"outputAddress"`
		InputAddresses    []string        `json:"inputAddresses"`
		AssetPrice        json.RawMessage `json:"assetPrice"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return bad("Bad Request: %v", err)
	}
	userID := r.PathValue("userId")
	switch {
	case strings.TrimSpace(userID) == "":
		return bad("userId is required")
	case req.Network == "":
		return bad("network is required")
	case req.Asset == "":
		return bad("asset is required")
	case req.TransferReference == "":
		return bad("transferReference is required")
	case req.Direction != "sent" && req.Direction != "received":
		return bad("direction must be sent or received, got %q", req.Direction)
	}
	n, ok := findNetwork(req.Network)
	if !ok {
		return bad("network %q is not supported", req.Network)
	}
	tx, second, hasSecond := strings.Cut(req.TransferReference, ":")
	switch {
	case tx == "":
		return bad("transferReference %q has no transaction hash", req.TransferReference)
	case n.HashOnly && hasSecond:
		return bad("transferReference on %s is the transaction hash alone, got %q", n.Name, req.TransferReference)
	case !n.HashOnly && n.Name != "XRPL" && (!hasSecond || second == ""):
		return bad("transferReference on %s must be \"<transaction hash>:<output address>\"%s, got %q", n.Name,
			map[bool]string{true: " or \"<transaction hash>:<output index>\"", false: ""}[n.UTXO], req.TransferReference)
	}
	amount, err := decimalText(req.AssetAmount)
	if err != nil {
		return bad("assetAmount: %v", err)
	}
	price, err := decimalText(req.AssetPrice)
	if err != nil {
		return bad("assetPrice: %v", err)
	}
	upper := strings.ToUpper(n.Name)
	id := nameUUID("transfer", userID, upper, req.Asset, req.TransferReference, req.Direction)

	s.mu.Lock()
	defer s.mu.Unlock()
	t, exists := s.transfers[id]
	if !exists {
		now := s.now()
		delay := s.opts.TransferDelay
		for k, d := range s.opts.NetworkDelays {
			if strings.EqualFold(k, n.Name) {
				delay = d
			}
		}
		t = &transfer{UserID: userID, Network: upper, Asset: req.Asset, Ref: req.TransferReference, Direction: req.Direction,
			ExternalID: id, InputAddresses: req.InputAddresses, AssetAmount: amount, AssetPrice: price,
			TransferTimestamp: req.TransferTimestamp, RegisteredAt: now, ReadyAt: now.Add(delay)}
		s.transfers[id] = t
	}
	return http.StatusOK, s.transferView(t, false)
}

// transferJSON is a transfer as KYT writes it, fields in the guide's order.
type transferJSON struct {
	UpdatedAt         *string `json:"updatedAt"`
	Asset             string  `json:"asset"`
	Network           string  `json:"network"`
	TransferReference string  `json:"transferReference"`
	Tx                *string `json:"tx"`
	Idx               *int    `json:"idx"`
	USDAmount         any     `json:"usdAmount"`
	AssetAmount       any     `json:"assetAmount"`
	Timestamp         *string `json:"timestamp"`
	OutputAddress     *string `json:"outputAddress"`
	ExternalID        string  `json:"externalId"`
}

// transferView is the JSON of a transfer: the registration answer never has details; the
// summary has them once processed.
func (s *Sim) transferView(t *transfer, summary bool) transferJSON {
	v := transferJSON{Asset: t.Asset, Network: t.Network, TransferReference: t.Ref, ExternalID: t.ExternalID}
	if !summary || !s.process(t) {
		return v
	}
	updated, tx, idx, ts := timeText(t.ReadyAt), t.Tx, t.Idx, t.Timestamp
	v.UpdatedAt, v.Tx, v.Idx, v.Timestamp = &updated, &tx, &idx, &ts
	v.USDAmount = numberOrNil(t.USDAmount)
	v.AssetAmount = json.Number(t.AssetAmount)
	v.OutputAddress = t.OutputAddress
	return v
}

// process fills in a transfer's details and alerts once its delay has passed; it reports
// whether the transfer is processed. Must be called with s.mu held.
func (s *Sim) process(t *transfer) bool {
	if t.processed {
		return true
	}
	if s.now().Before(t.ReadyAt) {
		return false
	}
	t.processed = true
	tx, second, _ := strings.Cut(t.Ref, ":")
	t.Tx = tx
	known, isKnown := knownTransactions[tx]
	if i, err := strconv.Atoi(second); err == nil {
		t.Idx = i
		if isKnown && known.OutputAddress != "" {
			t.OutputAddress = &known.OutputAddress
		}
	} else if second != "" {
		t.OutputAddress = &second
	} else if isKnown && known.OutputAddress != "" {
		t.OutputAddress = &known.OutputAddress
	}
	switch {
	case t.AssetAmount != "":
	case isKnown && known.AssetAmount != "":
		t.AssetAmount = known.AssetAmount
	default:
		t.AssetAmount = chainAmount(t.Ref)
	}
	t.USDAmount = usd(t.AssetAmount, t.Asset, t.AssetPrice)
	switch {
	case t.TransferTimestamp != "":
		t.Timestamp = t.TransferTimestamp
	case isKnown && known.Timestamp != "":
		t.Timestamp = known.Timestamp
	default:
		t.Timestamp = timeText(t.RegisteredAt.Truncate(time.Second))
	}

	// Who is on the other side: for a sent transfer, its output; for a received one, its
	// sender, as far as the sandbox's chain knows.
	var counterparty *Entity
	if t.Direction == "sent" {
		if t.OutputAddress != nil {
			t.Counterparty = *t.OutputAddress
			counterparty = s.entityOf(t.Counterparty)
		}
	} else {
		switch {
		case isKnown && known.Sender.Service != "":
			e := known.Sender
			counterparty = &e
		case s.txSenders[tx] != "":
			t.Counterparty = s.txSenders[tx]
		case len(t.InputAddresses) > 0:
			t.Counterparty = t.InputAddresses[0]
		default:
			t.Counterparty = "tx:" + tx
		}
		if counterparty == nil {
			counterparty = s.entityOf(t.Counterparty)
		}
	}
	t.Rated = counterparty
	out := ""
	if t.OutputAddress != nil {
		out = *t.OutputAddress
	}
	t.Alerts = s.raise(counterparty, alertRecord{UserID: t.UserID, Asset: t.Asset, Direction: t.Direction, Ref: t.Ref,
		Tx: tx, OutputAddress: out, Idx: t.Idx, Type: "TRANSFER", AmountUSD: deref(t.USDAmount), ReportedAt: t.RegisteredAt,
		CreatedAt: t.ReadyAt, Timestamp: mustTime(t.Timestamp, t.RegisteredAt)})
	return true
}
