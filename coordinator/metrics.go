package coordinator

import "github.com/prometheus/client_golang/prometheus"

// collectMetrics are the collector's (collect.go), registered on
// Config.Registerer when it is set.
type collectMetrics struct {
	passes       prometheus.Counter
	collected    prometheus.Counter
	kept         prometheus.Counter
	unreferenced prometheus.Gauge
}

func newCollectMetrics(reg prometheus.Registerer) (*collectMetrics, error) {
	m := &collectMetrics{
		passes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_collector_passes_total",
			Help: "Passes of the collector of unreferenced content run here (with the collector's lease).",
		}),
		collected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_collector_collected_total",
			Help: "Roots the collector unplaced: nothing referenced them for the grace period.",
		}),
		kept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_collector_kept_total",
			Help: "Roots marked for collection that were kept: referenced again, or changed, before the delete.",
		}),
		unreferenced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "verity_collector_unreferenced_roots",
			Help: "Placed roots nothing referenced at the collector's last pass here and that it left placed (within the grace period); collected once past it.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.passes, m.collected, m.kept, m.unreferenced} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
