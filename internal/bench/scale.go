package bench

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
)

// Load fills a migrated database with n verifications and, for each, an assessment, a
// screening, a terminal callback and a message to the counterparty, and an alert for every
// third assessment: the tables the
// list routes read, at the size of a VASP that kept years of them. Rows are made by
// generate_series in a few statements, with the tables' secondary indexes dropped meanwhile
// and built again after (a sorted build is several times faster than n inserts into each),
// then VACUUM ANALYZE leaves the tables as autovacuum would. Values are spread so that every
// filter has a common and a rare value (see loadSQL); created_at is one second apart, the
// newest now. A database whose verifications already hold n rows or more is left as it is.
func Load(ctx context.Context, db *sqlx.DB, n int, progress io.Writer) error {
	var have int
	if err := db.GetContext(ctx, &have, `SELECT count(*) FROM verifications`); err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	if have >= n {
		fmt.Fprintf(progress, "load: %d verifications there already; not loading\n", have)
		return nil
	}
	if have > 0 {
		return fmt.Errorf("bench: load: the database holds %d verifications, fewer than %d: start from an empty one", have, n)
	}
	conn, err := db.Connx(ctx)
	if err != nil {
		return fmt.Errorf("bench: load: %w", err)
	}
	defer conn.Close()
	// Non-unique indexes of the loaded tables; primary keys and unique indexes stay (foreign
	// keys and the one-terminal-callback rule need them).
	var indexes []struct {
		Name string `db:"name"`
		Def  string `db:"def"`
	}
	if err := sqlx.SelectContext(ctx, conn, &indexes, `SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS def
		FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
		WHERE t.relname = ANY($1) AND NOT x.indisunique AND t.relnamespace = 'public'::regnamespace`, loadedTables); err != nil {
		return fmt.Errorf("bench: load: list indexes: %w", err)
	}
	for _, set := range []string{`SET synchronous_commit = off`, `SET maintenance_work_mem = '256MB'`} {
		if _, err := conn.ExecContext(ctx, set); err != nil {
			return fmt.Errorf("bench: load: %w", err)
		}
	}
	for _, ix := range indexes {
		if _, err := conn.ExecContext(ctx, `DROP INDEX `+ix.Name); err != nil {
			return fmt.Errorf("bench: load: drop %s: %w", ix.Name, err)
		}
	}
	const chunk = 500_000 // rows a statement: progress to watch, and no transaction of hours
	for _, t := range loadSQL {
		start := time.Now()
		for lo := 1; lo <= n; lo += chunk {
			if _, err := conn.ExecContext(ctx, t.sql, n, lo, min(lo+chunk-1, n)); err != nil {
				return fmt.Errorf("bench: load %s: %w", t.table, err)
			}
		}
		fmt.Fprintf(progress, "load: %s in %s\n", t.table, time.Since(start).Round(time.Second))
	}
	start := time.Now()
	for _, ix := range indexes {
		if _, err := conn.ExecContext(ctx, ix.Def); err != nil {
			return fmt.Errorf("bench: load: build %s: %w", ix.Name, err)
		}
	}
	fmt.Fprintf(progress, "load: %d indexes built in %s\n", len(indexes), time.Since(start).Round(time.Second))
	start = time.Now()
	if _, err := conn.ExecContext(ctx, `VACUUM (ANALYZE) `+strings.Join(loadedTables, ", ")); err != nil {
		return fmt.Errorf("bench: load: vacuum: %w", err)
	}
	fmt.Fprintf(progress, "load: VACUUM ANALYZE in %s\n", time.Since(start).Round(time.Second))
	return nil
}

var loadedTables = []string{"verifications", "kyt_results", "kyt_alerts", "screening_results", "callbacks", "peer_messages"}

// loadSQL makes rows $2 to $3 of $1, of each table, row i of every table belonging to
// verification i. The spread, which the plan test and the scale bench rely on:
//   - verifications: 95% ORIGINATOR (originatingVaspId ours), 5% BENEFICIARY; the
//     counterparty is one of 500 (1000 to 1499), twenty rows in a row each; 1% BTC on
//     BITCOIN, 2% USDT on TRON, the rest ETH on ETHEREUM; a txHash on every eighth row; 1%
//     DENIED, 0.5% PENDING, the rest VERIFIED.
//   - kyt_results: 10% TRANSFER, the rest ATTEMPT; direction follows role; 1% ERROR, 0.1%
//     PENDING, 0.1% REGISTERED, the rest PROCESSED.
//   - kyt_alerts (i divisible by 3): 2% SEVERE, 10% HIGH, 33% MEDIUM, the rest LOW; 10%
//     MONITORING; 1% Flagged, 1% Dismissed, the rest Unreviewed.
//   - screening_results: statuses as kyt_results; 1% Severe, 5% High, 20% Medium, the rest Low.
//   - callbacks: 0.5% FAILED, 0.1% PENDING, the rest DELIVERED; each names its verification.
//   - peer_messages: 10% TX_REPORT, 1% RESULT, 0.1% ERROR_REPORT, the rest VERIFICATION;
//     statuses as callbacks.
var loadSQL = []struct{ table, sql string }{
	{"verifications", `INSERT INTO verifications (uuid, role, originating_vasp_id, beneficiary_vasp_id, network, asset, amount,
		beneficiary_address, payload, request_sha256, tx_hash, result, created_at, updated_at)
	SELECT md5('v' || i)::uuid, CASE WHEN i % 20 = 1 THEN 'BENEFICIARY' ELSE 'ORIGINATOR' END,
		CASE WHEN i % 20 = 1 THEN (1000 + i / 20 % 500)::text ELSE '` + ourVasp + `' END,
		CASE WHEN i % 20 = 1 THEN '` + ourVasp + `' ELSE (1000 + i / 20 % 500)::text END,
		CASE WHEN i % 100 = 1 THEN 'BITCOIN' WHEN i % 50 = 3 THEN 'TRON' ELSE 'ETHEREUM' END,
		CASE WHEN i % 100 = 1 THEN 'BTC' WHEN i % 50 = 3 THEN 'USDT' ELSE 'ETH' END, 1.25,
		'0x' || md5('a' || i), '{}', '\x00', CASE WHEN i % 8 = 0 THEN md5('t' || i) END,
		CASE WHEN i % 100 = 11 THEN 'DENIED' WHEN i % 200 = 13 THEN 'PENDING' ELSE 'VERIFIED' END,
		now() - ($1 - i) * interval '1 second', now() - ($1 - i) * interval '1 second'
	FROM generate_series($2::int, $3::int) i`},
	{"kyt_results", `INSERT INTO kyt_results (request_id, verification_uuid, counterparty_vasp_id, api_type, user_id, direction,
		network, asset, amount, output_address, external_id, status, alert_count, created_at, updated_at, assessed_at)
	SELECT md5('k' || i)::uuid, md5('v' || i)::uuid, (1000 + i / 20 % 500)::text,
		CASE WHEN i % 10 = 2 THEN 'TRANSFER' ELSE 'ATTEMPT' END, (1000 + i / 20 % 500)::text,
		CASE WHEN i % 20 = 1 THEN 'INCOMING' ELSE 'OUTGOING' END, 'Ethereum', 'ETH', 1.25, '0x' || md5('a' || i), md5('x' || i),
		CASE WHEN i % 100 = 7 THEN 'ERROR' WHEN i % 1000 = 8 THEN 'PENDING' WHEN i % 1000 = 9 THEN 'REGISTERED' ELSE 'PROCESSED' END,
		CASE WHEN i % 3 = 0 THEN 1 ELSE 0 END, ts, ts, ts
	FROM generate_series($2::int, $3::int) i, LATERAL (SELECT now() - ($1 - i) * interval '1 second' + interval '1 millisecond' AS ts) t`},
	{"kyt_alerts", `INSERT INTO kyt_alerts (alert_id, request_id, external_id, alert_level, entity_category, service_name,
		exposure_type, alert_amount, source, alert_status, created_at)
	SELECT 'alert-' || i, md5('k' || i)::uuid, md5('x' || i),
		CASE WHEN i % 50 = 0 THEN 'SEVERE' WHEN i % 10 = 3 THEN 'HIGH' WHEN i % 3 = 0 AND i % 9 = 0 THEN 'MEDIUM' ELSE 'LOW' END,
		'sanctions', 'Service ' || i % 100, 'DIRECT', 1.25,
		CASE WHEN i % 10 = 6 THEN 'MONITORING' ELSE 'ASSESSMENT' END,
		CASE WHEN i % 100 = 9 THEN 'Flagged' WHEN i % 100 = 12 THEN 'Dismissed' ELSE 'Unreviewed' END,
		now() - ($1 - i) * interval '1 second' + interval '2 milliseconds'
	FROM generate_series($2::int, $3::int) i WHERE i % 3 = 0`},
	{"screening_results", `INSERT INTO screening_results (request_id, verification_uuid, counterparty_vasp_id, address, status,
		risk, created_at, updated_at, assessed_at)
	SELECT md5('s' || i)::uuid, md5('v' || i)::uuid, (1000 + i / 20 % 500)::text, '0x' || md5('a' || i),
		CASE WHEN i % 100 = 7 THEN 'ERROR' WHEN i % 1000 = 8 THEN 'PENDING' WHEN i % 1000 = 9 THEN 'REGISTERED' ELSE 'PROCESSED' END,
		CASE WHEN i % 100 = 1 THEN 'Severe' WHEN i % 20 = 2 THEN 'High' WHEN i % 5 = 3 THEN 'Medium' ELSE 'Low' END, ts, ts, ts
	FROM generate_series($2::int, $3::int) i, LATERAL (SELECT now() - ($1 - i) * interval '1 second' + interval '3 milliseconds' AS ts) t`},
	{"callbacks", `INSERT INTO callbacks (id, request_id, verification_uuid, callback_type, terminal, payload, status, attempts,
		last_status_code, created_at, delivered_at)
	SELECT md5('c' || i)::uuid, md5('k' || i)::uuid, md5('v' || i)::uuid, 'CHAINALYSIS_KYT_RESULT', true, '{}',
		CASE WHEN i % 200 = 5 THEN 'FAILED' WHEN i % 1000 = 6 THEN 'PENDING' ELSE 'DELIVERED' END, 1, 204, ts, ts
	FROM generate_series($2::int, $3::int) i, LATERAL (SELECT now() - ($1 - i) * interval '1 second' + interval '4 milliseconds' AS ts) t`},
	{"peer_messages", `INSERT INTO peer_messages (id, verification_uuid, peer_vasp_id, kind, seq, status, attempts, last_status_code,
		created_at, delivered_at)
	SELECT md5('m' || i)::uuid, md5('v' || i)::uuid, (1000 + i / 20 % 500)::text,
		CASE WHEN i % 10 = 4 THEN 'TX_REPORT' WHEN i % 100 = 15 THEN 'RESULT' WHEN i % 1000 = 17 THEN 'ERROR_REPORT' ELSE 'VERIFICATION' END, 1,
		CASE WHEN i % 200 = 5 THEN 'FAILED' WHEN i % 1000 = 6 THEN 'PENDING' ELSE 'DELIVERED' END, 1, 200, ts, ts
	FROM generate_series($2::int, $3::int) i, LATERAL (SELECT now() - ($1 - i) * interval '1 second' + interval '5 milliseconds' AS ts) t`},
}

// ListCase is one list request the scale bench times and the plan test EXPLAINs: a route and
// query string, with the columns whose index must serve it.
type ListCase struct {
	Path, Query string
	// Indexed are the filtered columns (as in the SQL) that an index condition must use.
	Indexed []string
}

// String is the request, as the bench prints it.
func (c ListCase) String() string {
	if c.Query == "" {
		return c.Path
	}
	return c.Path + "?" + c.Query
}

// ListCases are every list route with each of its filters, on a database Load filled with n
// rows: ids in filters are rows Load made, dates its days.
func ListCases(n int) []ListCase {
	mid := n / 2
	// A day's range in the middle of the data, and rows there.
	from := time.Now().UTC().Add(-time.Duration(n-mid) * time.Second)
	day := "fromDate=" + url.QueryEscape(from.Format(time.RFC3339)) + "&toDate=" + url.QueryEscape(from.Add(24*time.Hour).Format(time.RFC3339))
	v := func(p string, i int) string { return uuidOf(p, i) }
	const (
		verifications = "/v1/verifications"
		kyt           = "/v1/risk-assessment/chainalysis-kyt"
		alerts        = "/v1/risk-assessment/chainalysis-kyt/alerts"
		screenings    = "/v1/risk-assessment/chainalysis-address-screening"
		callbacks     = "/v1/callbacks"
		messages      = "/v1/peer-messages"
	)
	return []ListCase{
		{verifications, "", nil},
		{verifications, "role=BENEFICIARY", []string{"role"}},
		{verifications, "role=ORIGINATOR", nil}, // most rows: the created_at index, filtered, reads barely more
		{verifications, "result=DENIED", []string{"result"}},
		{verifications, "symbol=BTC", []string{"asset"}},
		{verifications, "network=TRON", []string{"network"}},
		{verifications, "beneficiaryVaspId=1007", []string{"beneficiary_vasp_id"}},
		{verifications, "originatingVaspId=1007", []string{"originating_vasp_id"}},
		{verifications, "role=BENEFICIARY&" + day, []string{"role", "created_at"}},
		{verifications, "txHash=" + md5hex("t", 8*(mid/8)), []string{"tx_hash"}},
		{verifications, day, []string{"created_at"}},
		{verifications, "symbol=BTC&" + day, []string{"asset", "created_at"}},
		{kyt, "", nil},
		{kyt, "status=ERROR", []string{"status"}},
		{kyt, "status=PENDING", []string{"status"}},
		{kyt, "apiType=TRANSFER", []string{"api_type"}},
		{kyt, "status=PROCESSED", nil},
		{kyt, "direction=INCOMING", []string{"direction"}},
		{kyt, "verificationUuid=" + v("v", mid), []string{"verification_uuid"}},
		{kyt, "status=ERROR&" + day, []string{"status", "created_at"}},
		{alerts, "", nil},
		{alerts, "level=SEVERE", []string{"alert_level"}},
		{alerts, "source=MONITORING", []string{"source"}},
		{alerts, "alertStatus=Flagged", []string{"alert_status"}},
		{alerts, "requestId=" + v("k", 3*(mid/3)), []string{"request_id"}},
		{alerts, "verificationUuid=" + v("v", 3*(mid/3)), []string{"verification_uuid"}},
		{alerts, "level=SEVERE&" + day, []string{"alert_level", "created_at"}},
		{screenings, "", nil},
		{screenings, "status=ERROR", []string{"status"}},
		{screenings, "risk=Severe", []string{"risk"}},
		{screenings, "verificationUuid=" + v("v", mid), []string{"verification_uuid"}},
		{callbacks, "", nil},
		{callbacks, "status=FAILED", []string{"status"}},
		{callbacks, "requestId=" + v("k", mid), []string{"request_id"}},
		{callbacks, "verificationUuid=" + v("v", mid), []string{"verification_uuid"}},
		{messages, "", nil},
		{messages, "status=FAILED", []string{"status"}},
		{messages, "kind=ERROR_REPORT", []string{"kind"}},
		{messages, "kind=TX_REPORT", []string{"kind"}},
		{messages, "verificationUuid=" + v("v", mid), []string{"verification_uuid"}},
	}
}

// md5hex is md5(prefix || i) as PostgreSQL writes it.
func md5hex(prefix string, i int) string {
	return fmt.Sprintf("%x", md5.Sum([]byte(prefix+strconv.Itoa(i))))
}

// uuidOf is md5(prefix || i)::uuid, the id Load gives row i.
func uuidOf(prefix string, i int) string {
	h := md5hex(prefix, i)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ScaleOptions are those of a scale run.
type ScaleOptions struct {
	// DSN names a migrated database: empty, or filled by an earlier Load with at least N rows.
	DSN string
	// N is how many verifications (and assessments, screenings, callbacks; N/3 alerts) to load.
	N int
	// Samples is how many times each request is timed.
	Samples int
	// Depth is how many pages of 20 each unfiltered list is followed by cursor.
	Depth int
	// Calibration is how long the calibration runs (at concurrency 64, as Run's default);
	// negative skips it.
	Calibration time.Duration
	// Log receives progress and the enclave's warnings.
	Log io.Writer
}

// ScaleResult is what a scale run measured.
type ScaleResult struct {
	Calibration float64
	Rows        map[string]int
	Load        time.Duration
	// Lists are the first pages of every case, then the deep pages.
	Lists []Timing
	// Accept is POST /v1/verifications then POST /v1/risk-assessment/chainalysis-kyt.
	Accept Timing
}

// Timing is the latency of one kind of request.
type Timing struct {
	Name           string
	N              int
	P50, P99, Max  time.Duration
	Total          int
	TotalEstimated bool
}

func timing(name string, ds []time.Duration) Timing {
	return Timing{Name: name, N: len(ds), P50: percentile(ds, 0.5), P99: percentile(ds, 0.99), Max: percentile(ds, 1)}
}

// Scale loads N rows of every listed table and times each list route with each filter, first
// page and deep page by cursor, and the accept path, through the real HTTP server.
func Scale(ctx context.Context, o ScaleOptions) (ScaleResult, error) {
	res := ScaleResult{Rows: map[string]int{}}
	if o.N <= 0 {
		return res, fmt.Errorf("bench: scale must be positive")
	}
	o.Samples, o.Depth = max(o.Samples, 1), max(o.Depth, 1)
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Calibration == 0 {
		o.Calibration = 2 * time.Second
	}
	const concurrency = 64
	if o.Calibration > 0 {
		var err error
		if res.Calibration, err = Calibrate(ctx, o.DSN, concurrency, o.Calibration); err != nil {
			return res, err
		}
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-callback-secret-0123456789"))
	e, err := startEnclave(ctx, Options{DSN: o.DSN, Concurrency: 1, Log: o.Log}, secret)
	if err != nil {
		return res, err
	}
	defer e.close()
	start := time.Now()
	if err := Load(ctx, e.pools.API, o.N, o.Log); err != nil {
		return res, err
	}
	res.Load = time.Since(start)
	for _, t := range loadedTables {
		var n int
		if err := e.pools.API.GetContext(ctx, &n, `SELECT reltuples::bigint FROM pg_class WHERE oid = $1::regclass`, t); err != nil {
			return res, fmt.Errorf("bench: count %s: %w", t, err)
		}
		res.Rows[t] = n
	}

	for _, c := range ListCases(o.N) {
		var ds []time.Duration
		var p listPage
		for range o.Samples {
			t0 := time.Now()
			if p, err = getList(ctx, e.hc, e.base+c.String()); err != nil {
				return res, err
			}
			ds = append(ds, time.Since(t0))
		}
		t := timing(c.String(), ds)
		t.Total, t.TotalEstimated = p.Total, p.TotalEstimated
		res.Lists = append(res.Lists, t)
		fmt.Fprintf(o.Log, "timed %s\n", c)
	}
	// Deep pages: each unfiltered list followed Depth pages of 20 by cursor; every page of
	// the walk is timed, then the last one again Samples times.
	for _, path := range []string{"/v1/verifications", "/v1/risk-assessment/chainalysis-kyt", "/v1/risk-assessment/chainalysis-kyt/alerts",
		"/v1/risk-assessment/chainalysis-address-screening", "/v1/callbacks", "/v1/peer-messages"} {
		var walk []time.Duration
		next := ""
		for i := 0; i < o.Depth; i++ {
			u := e.base + path + "?limit=20"
			if next != "" {
				u += "&cursor=" + next
			}
			t0 := time.Now()
			p, err := getList(ctx, e.hc, u)
			if err != nil {
				return res, err
			}
			walk = append(walk, time.Since(t0))
			if p.Next == nil {
				break
			}
			next = *p.Next
		}
		res.Lists = append(res.Lists, timing(fmt.Sprintf("%s?limit=20, each of %d pages followed by cursor", path, len(walk)), walk))
		var ds []time.Duration
		u := e.base + path + "?limit=20&cursor=" + next
		var p listPage
		for range o.Samples {
			t0 := time.Now()
			if p, err = getList(ctx, e.hc, u); err != nil {
				return res, err
			}
			ds = append(ds, time.Since(t0))
		}
		t := timing(fmt.Sprintf("%s?limit=20&cursor=(page %d, offset %d)", path, len(walk)+1, p.Offset), ds)
		t.Total, t.TotalEstimated = p.Total, p.TotalEstimated
		res.Lists = append(res.Lists, t)
		fmt.Fprintf(o.Log, "walked %s\n", path)
	}
	// The accept path beside the loaded tables: create a verification, then assess it.
	var accept []time.Duration
	for i := range o.Samples {
		t0 := time.Now()
		id, err := createVerification(ctx, e.hc, e.base, o.N+i, false)
		if err != nil {
			return res, err
		}
		if _, err := assess(ctx, e.hc, e.base, id); err != nil {
			return res, err
		}
		accept = append(accept, time.Since(t0))
	}
	res.Accept = timing("POST /v1/verifications + POST /v1/risk-assessment/chainalysis-kyt", accept)
	return res, nil
}

type listPage struct {
	Total          int
	TotalEstimated bool
	Offset         int
	Next           *string
	Data           []json.RawMessage
}

func getList(ctx context.Context, hc *http.Client, u string) (listPage, error) {
	var p listPage
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return p, err
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := hc.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return p, fmt.Errorf("GET %s answered %d: %s", u, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(p.Data) == 0 {
		return p, fmt.Errorf("GET %s: an empty page; the case names no row the load made", u)
	}
	return p, nil
}

// Print writes the result as a table: each figure in milliseconds.
func (r ScaleResult) Print(w io.Writer, o ScaleOptions) {
	fmt.Fprintf(w, "enclave bench --scale %d: each request timed %d times, one at a time; deep pages %d pages of 20 by cursor\n", o.N, o.Samples, o.Depth)
	if r.Calibration > 0 {
		fmt.Fprintf(w, "  calibration: %.0f durable single-row INSERTs/s into this PostgreSQL at concurrency 64\n", r.Calibration)
	}
	fmt.Fprintf(w, "  rows:        ")
	for _, t := range loadedTables {
		fmt.Fprintf(w, "%s %d  ", t, r.Rows[t])
	}
	fmt.Fprintf(w, "(loaded in %s)\n", r.Load.Round(time.Second))
	fmt.Fprintf(w, "  %-100s %8s %8s %8s  %s\n", "request", "p50", "p99", "max", "total")
	for _, t := range append(r.Lists, r.Accept) {
		total := ""
		if t.Total > 0 {
			total = fmt.Sprint(t.Total)
			if t.TotalEstimated {
				total = "~" + total
			}
		}
		fmt.Fprintf(w, "  %-100s %8s %8s %8s  %s\n", t.Name, ms(t.P50), ms(t.P99), ms(t.Max), total)
	}
}
