package screening_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/travelrule/enclave/internal/bench"
	et "github.com/travelrule/enclave/internal/enclavetest"
	"github.com/travelrule/enclave/internal/kytsim"
)

// BenchmarkPreferWait measures what Prefer: wait adds to a screening: the time from sending
// the POST to reading the whole answer, against the screening's own time in the database
// (accept to terminal, created_at to updated_at). With kytsim answering each call in 50 ms:
//
//	go test ./internal/screening -run '^$' -bench PreferWait -benchtime 200x
func BenchmarkPreferWait(b *testing.B) {
	e := et.Start(b, et.Options{Sim: kytsim.Options{Faults: kytsim.Faults{LatencyMillis: 50}}})
	vs := make([]string, b.N)
	for i := range vs {
		vs[i] = e.CreateOutgoing("ETH", "", "1", fmt.Sprintf("0x%040x", 1000+i))
	}
	// The bench's calibration, on this (fsync-off) test PostgreSQL: figures are read beside it.
	cal, err := bench.Calibrate(context.Background(), e.DSN, 64, 2*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	answer := make([]time.Duration, 0, b.N)
	added := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		req, _ := http.NewRequest("POST", e.URL+"/v1/risk-assessment/chainalysis-address-screening",
			strings.NewReader(`{"verificationUuid":"`+vs[i]+`"}`))
		req.Header.Set("Authorization", "Bearer "+et.APIKey)
		req.Header.Set("Prefer", "wait=10")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		took := time.Since(start)
		if resp.Header.Get("Preference-Applied") == "" {
			b.Fatalf("no inline answer")
		}
		var own float64
		if err := e.DB.Get(&own, `SELECT extract(epoch FROM updated_at - created_at) FROM screening_results WHERE verification_uuid = $1`, vs[i]); err != nil {
			b.Fatal(err)
		}
		answer = append(answer, took)
		added = append(added, took-time.Duration(own*float64(time.Second)))
	}
	b.StopTimer()
	b.ReportMetric(cal, "calibration-inserts/s")
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"answer", answer}, {"added", added}} {
		sort.Slice(m.d, func(i, j int) bool { return m.d[i] < m.d[j] })
		b.ReportMetric(float64(m.d[len(m.d)/2].Microseconds())/1000, m.name+"-p50-ms")
		b.ReportMetric(float64(m.d[len(m.d)*99/100].Microseconds())/1000, m.name+"-p99-ms")
	}
}
