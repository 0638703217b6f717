package kytjob

import "context"

// End is a terminal move for EndTogether: Processed with USDPrice, or ERROR with Code.
type End struct {
	RequestID, USDPrice, Code string
}

// EndTogether makes the terminal moves of ends in one batch, as runs that end at the same
// moment share one transaction, and returns each one's outcome.
func (s *Service) EndTogether(ctx context.Context, ends []End) []error {
	ts := make([]terminal, len(ends))
	for i, e := range ends {
		if e.Code != "" {
			msg := "ended by the test"
			ts[i] = terminal{RequestID: e.RequestID, Status: "ERROR", ErrorCode: &e.Code, ErrorMessage: &msg}
			continue
		}
		n, ext, usd := 0, "ext-"+e.RequestID, e.USDPrice
		ts[i] = terminal{RequestID: e.RequestID, Status: "PROCESSED", AlertCount: &n, USDPrice: &usd, ExternalID: &ext}
	}
	out, err := s.flushEnds(ctx, ts)
	if err != nil {
		return []error{err}
	}
	return out
}
