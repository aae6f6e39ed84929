package gateway

import "github.com/prometheus/client_golang/prometheus"

// Values of the kind label.
const (
	kindHTML        = "html"
	kindAsset       = "asset"
	kindCARFallback = "car_fallback"
	kindWasm        = "wasm"
	kindScript      = "script"
	kindSession     = "session"
	kindReport      = "report"
)

type metrics struct {
	bytesServed  *prometheus.CounterVec // kind
	requests     *prometheus.CounterVec // kind, code
	nodeReports  *prometheus.CounterVec // node, reason
	nodeFailures *prometheus.CounterVec // node, reason
	cacheHits    prometheus.Counter
	cacheMisses  prometheus.Counter
	cacheBytes   prometheus.GaugeFunc
	// vouchersLimited counts sessions answered without a voucher because
	// the client address asked for too many.
	vouchersLimited prometheus.Counter
	// vouchersUnheld counts sessions answered without a voucher because
	// the account could not hold its budget (Config.Holds).
	vouchersUnheld prometheus.Counter
	// limited counts what the per-client limits refused, by limit
	// (limitConns, limitRequests).
	limited *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, cacheBytes func() float64) (*metrics, error) {
	m := &metrics{
		bytesServed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_gateway_bytes_served_total",
			Help: "Body bytes the gateway served, by kind.",
		}, []string{"kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_gateway_requests_total",
			Help: "Requests the gateway answered, by kind and status code.",
		}, []string{"kind", "code"}),
		nodeReports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_gateway_node_reports_total",
			Help: "Node failures reported by workers, by node and reason.",
		}, []string{"node", "reason"}),
		nodeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_gateway_node_failures_total",
			Help: "Node requests of the gateway that failed, by node and reason.",
		}, []string{"node", "reason"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_gateway_html_cache_hits_total",
			Help: "HTML documents served from the in-memory cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_gateway_html_cache_misses_total",
			Help: "HTML documents fetched from nodes because they were not cached.",
		}),
		cacheBytes: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "verity_gateway_html_cache_bytes",
			Help: "Bytes of HTML held in the in-memory cache.",
		}, cacheBytes),
		vouchersLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_gateway_vouchers_limited_total",
			Help: "Sessions answered without a voucher: the client address asked for too many.",
		}),
		vouchersUnheld: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_gateway_vouchers_unheld_total",
			Help: "Sessions answered without a voucher: the account's available funds did not cover its budget, or the ledger could not hold it.",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_gateway_limited_total",
			Help: "Connections closed and requests answered 429 because their client was over its share, by limit (conns, requests).",
		}, []string{"limit"}),
	}
	for _, c := range []prometheus.Collector{m.bytesServed, m.requests, m.nodeReports, m.nodeFailures, m.cacheHits, m.cacheMisses, m.cacheBytes, m.vouchersLimited, m.vouchersUnheld, m.limited} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
