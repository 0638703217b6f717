package exchange

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/travelrule/enclave/internal/jsontime"
	"github.com/travelrule/enclave/internal/signedhttp"
)

// Health of a counterparty as GET /v1/vasps shows it (VerifyVASP's words).
const (
	HealthUp   = "UP"
	HealthDown = "DOWN"
)

// DefaultProbeTimeout bounds one probe of a counterparty's /healthz: an enclave answers it
// without touching its database, so anything slower is as good as down.
const DefaultProbeTimeout = 3 * time.Second

// DirectoryConfig is what the directory knows of this VASP and its counterparties.
type DirectoryConfig struct {
	// VaspID and VaspName are ours (ENCLAVE_VASP_ID, ENCLAVE_VASP_NAME); the name may be empty.
	VaspID, VaspName string
	// Peers are the counterparties of the peers file, in its order.
	Peers []Peer
	// Interval is how often each counterparty is probed (ENCLAVE_PEER_PROBE_INTERVAL).
	Interval time.Duration
	// ProbeTimeout bounds one probe; default DefaultProbeTimeout, never more than Interval.
	ProbeTimeout time.Duration
	HTTPClient   *http.Client
	// TRPClient probes the counterparties that speak TRP (with our mTLS certificate); nil: a
	// plain client (ENCLAVE_TRP_INSECURE).
	TRPClient *http.Client
}

// Directory answers which counterparties this enclave can exchange with and whether they are
// up (DESIGN.md §13). Their health is probed by a periodic job on River's leader and kept in
// the counterparty_health table, which it owns, so a request never waits on a probe and every
// replica answers the same.
type Directory struct {
	api, work *sqlx.DB
	cfg       DirectoryConfig
	probe     *signedhttp.Client
	trpProbe  *signedhttp.Client
	log       *slog.Logger
}

// NewDirectory returns a Directory answering from api and probing with work.
func NewDirectory(api, work *sqlx.DB, cfg DirectoryConfig, log *slog.Logger) *Directory {
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Second
	}
	if cfg.ProbeTimeout <= 0 {
		cfg.ProbeTimeout = DefaultProbeTimeout
	}
	cfg.ProbeTimeout = min(cfg.ProbeTimeout, cfg.Interval)
	return &Directory{api: api, work: work, cfg: cfg, log: log, probe: signedhttp.New(cfg.HTTPClient, cfg.ProbeTimeout),
		trpProbe: signedhttp.New(cfg.TRPClient, cfg.ProbeTimeout)}
}

// Self is this VASP as GET /v1/vasps/self shows it.
type Self struct {
	VaspID string `json:"vaspId"`
	// VaspName is ENCLAVE_VASP_NAME; null when it is not set.
	VaspName *string `json:"vaspName"`
}

// Self returns this VASP's id and name.
func (d *Directory) Self() Self { return Self{VaspID: d.cfg.VaspID, VaspName: ptr(d.cfg.VaspName)} }

// Counterparty is one counterparty of the peers file as GET /v1/vasps shows it. Only what the
// peers file and the probes tell is shown: VerifyVASP's legalName, jurisdiction and the like
// come from its central directory, which peer-to-peer enclaves do not have.
type Counterparty struct {
	VaspID   string `json:"vaspId"`
	VaspName string `json:"vaspName"`
	// Health is UP when the latest probe, recent enough, got a 2xx from its /healthz.
	Health string `json:"health"`
	// LastSeenAt is when it was last seen alive: it answered a probe, acknowledged a message we
	// sent, or sent us one (Seen); null if it never was.
	LastSeenAt *jsontime.Time `json:"lastSeenAt"`
}

// Health is a counterparty with what the console shows of its probes besides: GET /v1/vasps
// and the console's counterparties page read the same rows through Health, so they never
// disagree.
type Health struct {
	Counterparty
	// URL is its enclave's base URL from the peers file ("" when it only calls us).
	URL string
	// ProbedAt is when it was last probed, nil if never; Problem what that probe got when it
	// was not a 2xx; Since when its probes' verdict last changed.
	ProbedAt *time.Time
	Problem  string
	Since    *time.Time
}

// stale is how old the latest probe may be for its UP to stand: were the probes to stop (no
// leader for a while), a counterparty is not shown UP on old news.
func (d *Directory) stale() time.Duration {
	return max(3*d.cfg.Interval+d.cfg.ProbeTimeout, 10*time.Second)
}

// List returns every counterparty of the peers file, in its order, with its health. One
// without a url in the peers file can call us but is never probed or sent to: DOWN.
func (d *Directory) List(ctx context.Context) ([]Counterparty, error) {
	hs, err := d.Health(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Counterparty, len(hs))
	for i, h := range hs {
		out[i] = h.Counterparty
	}
	return out, nil
}

// Health returns every counterparty of the peers file, in its order, as List does, with the
// detail of its probes.
func (d *Directory) Health(ctx context.Context) ([]Health, error) {
	var rows []struct {
		VaspID    string         `db:"vasp_id"`
		Up        bool           `db:"up"`
		LastSeen  sql.NullTime   `db:"last_seen_at"`
		CheckedAt sql.NullTime   `db:"checked_at"`
		LastError sql.NullString `db:"last_error"`
		ChangedAt sql.NullTime   `db:"changed_at"`
	}
	ids := make([]string, len(d.cfg.Peers))
	for i, p := range d.cfg.Peers {
		ids[i] = p.VaspID
	}
	// The database's clock judges staleness, so every replica answers the same. A counterparty
	// only seen through the exchange (Seen) was never probed: checked_at is null, and it is DOWN.
	if err := d.api.SelectContext(ctx, &rows, `SELECT vasp_id,
		coalesce(up AND checked_at > now() - $2 * interval '1 millisecond', false) AS up,
		last_seen_at, checked_at, last_error, changed_at FROM counterparty_health WHERE vasp_id = ANY($1)`,
		ids, d.stale().Milliseconds()); err != nil {
		return nil, fmt.Errorf("read counterparty health: %w", err)
	}
	out := make([]Health, len(d.cfg.Peers))
	for i, p := range d.cfg.Peers {
		out[i] = Health{Counterparty: Counterparty{VaspID: p.VaspID, VaspName: p.Name, Health: HealthDown}, URL: p.URL}
		for _, r := range rows {
			if r.VaspID != p.VaspID {
				continue
			}
			if r.Up && p.URL != "" {
				out[i].Health = HealthUp
			}
			if r.LastSeen.Valid {
				out[i].LastSeenAt = &jsontime.Time{Time: r.LastSeen.Time}
			}
			if r.CheckedAt.Valid {
				out[i].ProbedAt, out[i].Since = &r.CheckedAt.Time, &r.ChangedAt.Time
				out[i].Problem = r.LastError.String
			}
		}
	}
	return out, nil
}

// Seen records that the counterparty vaspID was just seen alive through the exchange: a message
// it sent us passed its signature check, or it acknowledged one we sent (its lastSeenAt). Its
// health stays the probes' to tell: it calling us says nothing of whether we can reach it.
func (d *Directory) Seen(ctx context.Context, vaspID string) error { return seen(ctx, d.api, vaspID) }

// seen writes a sighting of vaspID: the one place lastSeenAt moves besides a probe. At most one
// write a second a counterparty, so a busy lane does not queue on its row.
func seen(ctx context.Context, db sqlx.ExecerContext, vaspID string) error {
	if _, err := db.ExecContext(ctx, `WITH u AS (UPDATE counterparty_health SET last_seen_at = now()
			WHERE vasp_id = $1 AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 second') RETURNING 1)
		INSERT INTO counterparty_health (vasp_id, up, last_seen_at, changed_at)
		SELECT $1, false, now(), now() WHERE NOT EXISTS (SELECT 1 FROM counterparty_health WHERE vasp_id = $1)
		ON CONFLICT (vasp_id) DO NOTHING`, vaspID); err != nil {
		return fmt.Errorf("record that %s was seen: %w", vaspID, err)
	}
	return nil
}

// Probe asks every counterparty with a url for its /healthz (a TRP counterparty: its endpoint),
// at once, and records what each answered. A change of health is logged.
func (d *Directory) Probe(ctx context.Context) error {
	type verdict struct {
		peer    Peer
		problem string
	}
	var probed []verdict
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range d.cfg.Peers {
		if p.URL == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := verdict{peer: p}
			if p.TRP {
				// A TRP endpoint has no /healthz: any answer below 500 to a GET of it (TRP
				// implementations answer 405) shows it up, behind mTLS.
				if a, err := d.trpProbe.Get(ctx, p.URL); err != nil && (a.Status == 0 || a.Status >= 500) {
					v.problem = err.Error()
				}
			} else if _, err := d.probe.Get(ctx, strings.TrimRight(p.URL, "/")+"/healthz"); err != nil {
				v.problem = err.Error()
			}
			mu.Lock()
			probed = append(probed, v)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(probed) == 0 {
		return nil
	}
	was := map[string]bool{}
	var rows []struct {
		VaspID string `db:"vasp_id"`
		Up     bool   `db:"up"`
	}
	if err := d.work.SelectContext(ctx, &rows, `SELECT vasp_id, up FROM counterparty_health`); err != nil {
		return fmt.Errorf("read counterparty health: %w", err)
	}
	for _, r := range rows {
		was[r.VaspID] = r.Up
	}
	for _, v := range probed {
		up := v.problem == ""
		if _, err := d.work.ExecContext(ctx, `INSERT INTO counterparty_health AS h (vasp_id, up, checked_at, last_seen_at, last_error, changed_at)
			VALUES ($1, $2, now(), CASE WHEN $2 THEN now() END, $3, now())
			ON CONFLICT (vasp_id) DO UPDATE SET up = EXCLUDED.up, checked_at = now(),
				last_seen_at = coalesce(EXCLUDED.last_seen_at, h.last_seen_at), last_error = EXCLUDED.last_error,
				changed_at = CASE WHEN h.up = EXCLUDED.up THEN h.changed_at ELSE now() END`,
			v.peer.VaspID, up, ptr(v.problem)); err != nil {
			return fmt.Errorf("record health of %s: %w", v.peer.VaspID, err)
		}
		if prev, known := was[v.peer.VaspID]; !known || prev != up {
			if up {
				d.log.Info("counterparty is UP", "counterparty", v.peer.VaspID)
			} else {
				d.log.Warn("counterparty is DOWN", "counterparty", v.peer.VaspID, "err", v.problem)
			}
		}
	}
	return nil
}

// PeriodicJob is the probe, every Interval and at start, on River's leader only.
func (d *Directory) PeriodicJob() *river.PeriodicJob {
	return river.NewPeriodicJob(river.PeriodicInterval(d.cfg.Interval),
		func() (river.JobArgs, *river.InsertOpts) { return ProbeArgs{}, nil }, &river.PeriodicJobOpts{RunOnStart: true})
}

// AddWorkers registers the probe's worker.
func (d *Directory) AddWorkers(w *river.Workers) { river.AddWorker(w, &ProbeWorker{D: d}) }

// ProbeArgs is one probe of every counterparty.
type ProbeArgs struct{}

// Kind is stable across deploys: never rename it.
func (ProbeArgs) Kind() string { return "counterparty_probe" }

// InsertOpts: on the exchange's lane, so busy assessments never delay it; at most one
// unfinished, and never retried: the next interval's probe is the retry.
func (ProbeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable, rivertype.JobStateRunning,
		rivertype.JobStateScheduled}}}
}

// ProbeWorker works ProbeArgs.
type ProbeWorker struct {
	river.WorkerDefaults[ProbeArgs]
	D *Directory
}

// Timeout bounds the probes, which run at once, and the writes after them.
func (w *ProbeWorker) Timeout(*river.Job[ProbeArgs]) time.Duration {
	return w.D.cfg.ProbeTimeout + 10*time.Second
}

// Work probes every counterparty.
func (w *ProbeWorker) Work(ctx context.Context, _ *river.Job[ProbeArgs]) error { return w.D.Probe(ctx) }
