package kytjob_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/travelrule/enclave/internal/bench"
	et "github.com/travelrule/enclave/internal/enclavetest"
)

// BenchmarkMonitorSync is one monitoring sync that finds no new alert, over a database of
// `stored` TRANSFER assessments (20 with their alerts at Chainalysis, the rest padding): its
// cost follows the alerts read, not the assessments stored.
//
//	go test ./internal/kytjob -run '^$' -bench MonitorSync -benchtime 50x
func BenchmarkMonitorSync(b *testing.B) {
	for _, stored := range []int{0, 10000} {
		b.Run(fmt.Sprintf("assessments=%d", stored+20), func(b *testing.B) {
			e := et.Start(b, et.Options{})
			for i := range 20 {
				addr := fmt.Sprintf("0x%040x", 0xdd00+i)
				if i%2 == 0 {
					addr = "0x53b6936513e738f44FB50d2b9476730C0Ab3Bfc1"
				}
				v := e.CreateOutgoing("ETH", "", "1", addr)
				e.ReportTx(v, et.TxHash(fmt.Sprint("bench", i)))
				e.Receiver.Terminal(b, e.Assess(v, ""), wait)
			}
			if stored > 0 {
				if _, err := e.DB.Exec(`INSERT INTO kyt_results (request_id, verification_uuid, counterparty_vasp_id, api_type, user_id,
					direction, network, asset, amount, transfer_ref, output_address, status, alert_count, external_id)
					SELECT gen_random_uuid(), k.verification_uuid, k.counterparty_vasp_id, 'TRANSFER', k.user_id, 'OUTGOING', k.network,
						k.asset, 1, '0x' || md5(g::text) || md5(g::text) || ':' || k.output_address, k.output_address, 'PROCESSED', 0,
						gen_random_uuid()::text
					FROM generate_series(1, $1) g, (SELECT * FROM kyt_results LIMIT 1) k`, stored); err != nil {
					b.Fatal(err)
				}
				e.DB.Exec(`ANALYZE kyt_results`) //nolint:errcheck
				// How a new alert is matched: an index lookup per transfer, not a scan.
				var plan []string
				if err := e.DB.Select(&plan, `EXPLAIN SELECT DISTINCT ON (m.user_id, m.ref, m.asset) k.request_id
					FROM unnest($1::text[], $2::text[], $3::text[]) AS m(user_id, ref, asset)
					JOIN kyt_results k ON k.api_type = 'TRANSFER' AND k.user_id = m.user_id AND k.transfer_ref = m.ref
						AND upper(k.asset) = m.asset AND k.status IN ('PROCESSED', 'ERROR')
					ORDER BY m.user_id, m.ref, m.asset, k.created_at DESC`, []string{"u"}, []string{"r"}, []string{"ETH"}); err != nil {
					b.Fatal(err)
				}
				b.Logf("match plan over %d assessments:\n%s", stored+20, strings.Join(plan, "\n"))
			}
			ctx := context.Background()
			// The bench's calibration, on this (fsync-off) test PostgreSQL: figures are read beside it.
			cal, err := bench.Calibrate(ctx, e.DSN, 64, 2*time.Second)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.App.Assessments.Sync(ctx); err != nil { // the first sync records the cursor
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if err := e.App.Assessments.Sync(ctx); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(cal, "calibration-inserts/s")
		})
	}
}
