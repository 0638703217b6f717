package app

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// CallbackLane is the queue label callback deliveries show under in enclave_jobs and
// enclave_jobs_running: not a River queue (the callbacks rows are their own work) but shown as
// one, so a dashboard reads every lane the same way.
const CallbackLane = "callbacks"

// jobMetrics shows what is in flight: the jobs this process is working now, by queue, and the
// jobs of every replica by queue and state, read from the database when /metrics is scraped.
// An assessment waiting on Chainalysis is a running job (a goroutine, no connection); one
// waiting for its next poll is scheduled; one waiting for a worker is available. Callback
// deliveries show as the queue "callbacks" in the same states.
type jobMetrics struct {
	running *prometheus.GaugeVec
}

func newJobMetrics(db *sqlx.DB, reg *prometheus.Registry, callbacks func(context.Context) (map[string]int, error)) *jobMetrics {
	m := &jobMetrics{running: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "enclave_jobs_running",
		Help: "Jobs this process is working now, by queue (default: assessments; callbacks: deliveries)."}, []string{"queue"})}
	reg.MustRegister(m.running, scraped{
		desc: prometheus.NewDesc("enclave_jobs", "Unfinished jobs of every replica by queue and state "+
			"(available: waiting for a worker; running; scheduled: snoozed until their next step; retryable).",
			[]string{"queue", "state"}, nil),
		// The states asked for lead River's fetch index, so the count reads only the jobs in
		// flight, never the finished ones River keeps for a day.
		count: func(ctx context.Context) ([]counted, error) {
			var rows []struct {
				Queue string `db:"queue"`
				State string `db:"state"`
				N     int    `db:"n"`
			}
			err := db.SelectContext(ctx, &rows, `SELECT queue, state::text AS state, count(*) AS n FROM river_job
				WHERE state IN ('available', 'running', 'scheduled', 'retryable') GROUP BY 1, 2`)
			if err != nil {
				return nil, err
			}
			out := make([]counted, 0, len(rows)+3)
			for _, r := range rows {
				out = append(out, counted{[]string{r.Queue, r.State}, float64(r.N)})
			}
			lane, err := callbacks(ctx)
			for state, n := range lane {
				if n > 0 {
					out = append(out, counted{[]string{CallbackLane, state}, float64(n)})
				}
			}
			return out, err
		},
	})
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

// newKeyUse shows how many verifications each data key sealed ("plain" for rows written before
// payloads were sealed): after `enclave keyset rotate` and `enclave rekey`, only the primary's.
func newKeyUse(use func(context.Context) (map[string]int, error), reg *prometheus.Registry) {
	reg.MustRegister(scraped{
		desc: prometheus.NewDesc("enclave_verifications_by_key",
			"Verifications by the id of the data key that sealed their payload (plain: not yet sealed).", []string{"key"}, nil),
		count: func(ctx context.Context) ([]counted, error) {
			m, err := use(ctx)
			out := make([]counted, 0, len(m))
			for key, n := range m {
				out = append(out, counted{[]string{key}, float64(n)})
			}
			return out, err
		},
	})
}

// newMonitorLag shows how long ago the last complete monitoring sync of any replica ended.
func newMonitorLag(lag func(context.Context) (float64, error), reg *prometheus.Registry) {
	reg.MustRegister(scraped{
		desc: prometheus.NewDesc("enclave_kyt_monitor_lag_seconds",
			"Seconds since the last complete monitoring sync of any replica; -1 before the first.", nil, nil),
		count: func(ctx context.Context) ([]counted, error) {
			s, err := lag(ctx)
			return []counted{{nil, s}}, err
		},
	})
}

// scraped is a gauge read from the database when /metrics is scraped.
type scraped struct {
	desc  *prometheus.Desc
	count func(context.Context) ([]counted, error)
}

// counted is one value of a scraped gauge, with its label values.
type counted struct {
	labels []string
	n      float64
}

// Describe is part of prometheus.Collector.
func (s scraped) Describe(ch chan<- *prometheus.Desc) { ch <- s.desc }

// Collect counts now; with the database down it reports nothing (/readyz says why).
func (s scraped) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := s.count(ctx)
	if err != nil {
		return
	}
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(s.desc, prometheus.GaugeValue, r.n, r.labels...)
	}
}
