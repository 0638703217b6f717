package app

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// jobMetrics shows what is in flight: the jobs this process is working now, by queue, and the
// jobs of every replica by queue and state, read from the database when /metrics is scraped.
// An assessment waiting on Chainalysis is a running job (a goroutine, no connection); one
// waiting for its next poll is scheduled; one waiting for a worker is available.
type jobMetrics struct {
	running *prometheus.GaugeVec
	db      *sqlx.DB
	states  *prometheus.Desc
}

func newJobMetrics(db *sqlx.DB, reg *prometheus.Registry) *jobMetrics {
	m := &jobMetrics{db: db,
		running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "enclave_jobs_running",
			Help: "Jobs this process is working now, by queue (default: assessments; callbacks: deliveries)."}, []string{"queue"}),
		states: prometheus.NewDesc("enclave_jobs", "Unfinished jobs of every replica by queue and state "+
			"(available: waiting for a worker; running; scheduled: snoozed until their next step; retryable).",
			[]string{"queue", "state"}, nil),
	}
	reg.MustRegister(m.running, m)
	return m
}

// middleware counts the jobs being worked.
func (m *jobMetrics) middleware() rivertype.Middleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		g := m.running.WithLabelValues(job.Queue)
		g.Inc()
		defer g.Dec()
		return doInner(ctx)
	})
}

// Describe is part of prometheus.Collector.
func (m *jobMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- m.states }

// Collect counts unfinished jobs. The states it asks for lead River's fetch index, so the
// count reads only the jobs in flight, never the finished ones River keeps for a day.
func (m *jobMetrics) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var rows []struct {
		Queue string `db:"queue"`
		State string `db:"state"`
		N     int    `db:"n"`
	}
	if err := m.db.SelectContext(ctx, &rows, `SELECT queue, state::text AS state, count(*) AS n FROM river_job
		WHERE state IN ('available', 'running', 'scheduled', 'retryable') GROUP BY 1, 2`); err != nil {
		return // the database is down: /readyz says so
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(m.states, prometheus.GaugeValue, float64(r.N), r.Queue, r.State)
	}
}

// keyUse shows how many verifications each data key sealed ("plain" for rows written before
// payloads were sealed): after `enclave keyset rotate` and `enclave rekey`, only the primary's.
type keyUse struct {
	count func(context.Context) (map[string]int, error)
	desc  *prometheus.Desc
}

func newKeyUse(count func(context.Context) (map[string]int, error), reg *prometheus.Registry) {
	reg.MustRegister(&keyUse{count: count, desc: prometheus.NewDesc("enclave_verifications_by_key",
		"Verifications by the id of the data key that sealed their payload (plain: not yet sealed).", []string{"key"}, nil)})
}

// Describe is part of prometheus.Collector.
func (k *keyUse) Describe(ch chan<- *prometheus.Desc) { ch <- k.desc }

// Collect counts at scrape time.
func (k *keyUse) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	use, err := k.count(ctx)
	if err != nil {
		return
	}
	for key, n := range use {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.GaugeValue, float64(n), key)
	}
}
