package app

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/travelrule/enclave/internal/config"
	"github.com/travelrule/enclave/internal/exchange"
)

// newDirectory wires the directory of counterparties (GET /v1/vasps), its probe and
// enclave_counterparty_up, which reads the health every replica shares when /metrics is scraped.
func newDirectory(cfg config.Config, pools Pools, t Tuning, trpClient *http.Client, reg *prometheus.Registry, log *slog.Logger) *exchange.Directory {
	peers := make([]exchange.Peer, len(cfg.Peers))
	for i, p := range cfg.Peers {
		peers[i] = exchange.Peer{VaspID: p.VaspID, Name: p.Name, URL: p.URL, Secret: p.Secret, TRP: p.TRP()}
	}
	d := exchange.NewDirectory(pools.API, pools.Pipeline, exchange.DirectoryConfig{VaspID: cfg.VaspID, VaspName: cfg.VASPName,
		Peers: peers, Interval: cfg.PeerProbeInterval, ProbeTimeout: t.ProbeTimeout, TRPClient: trpClient}, log)
	reg.MustRegister(scraped{
		desc: prometheus.NewDesc("enclave_counterparty_up",
			"1 when the counterparty's enclave answered its latest health probe, 0 when not (GET /v1/vasps).", []string{"vaspId"}, nil),
		count: func(ctx context.Context) ([]counted, error) {
			list, err := d.List(ctx)
			out := make([]counted, len(list))
			for i, c := range list {
				out[i] = counted{[]string{c.VaspID}, 0}
				if c.Health == exchange.HealthUp {
					out[i].n = 1
				}
			}
			return out, err
		},
	})
	return d
}
