package node

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Transport label values.
const (
	transportHTTP         = "http"
	transportWebTransport = "webtransport"
)

type metrics struct {
	inflight atomic.Int64 // requests being served, both transports
	blocks   atomic.Int64 // mirror of blocksStored, for status reports

	registry        *prometheus.Registry
	requests        *prometheus.CounterVec
	bytesSent       *prometheus.CounterVec
	blocksStored    prometheus.Gauge
	wtSessions      prometheus.Gauge
	certRotations   prometheus.Counter
	corruptBlocks   prometheus.Counter
	blockRepairs    prometheus.Counter
	reported        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	pinFetched      prometheus.Counter

	// payments
	paidSessions   prometheus.Counter
	unpaidStreams  prometheus.Counter
	baoStreams     prometheus.Counter
	refusedStreams *prometheus.CounterVec
	unpaidRefused  prometheus.Counter
	receipts       *prometheus.CounterVec
	receiptedBytes prometheus.Counter
	creditStalls   prometheus.Counter
	creditCuts     *prometheus.CounterVec
	settlements    *prometheus.CounterVec
	settledBytes   prometheus.Counter
	settleRefused  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_requests_total", Help: "Requests served, by transport and status code.",
		}, []string{"transport", "code"}),
		bytesSent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_bytes_sent_total", Help: "Response body bytes sent, by transport.",
		}, []string{"transport"}),
		blocksStored: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "verity_node_blocks_stored", Help: "Blocks in the blockstore.",
		}),
		wtSessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "verity_node_webtransport_sessions", Help: "Open WebTransport sessions.",
		}),
		certRotations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_cert_rotations_total", Help: "WebTransport certificate rotations.",
		}),
		corruptBlocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_corrupt_blocks_total",
			Help: "Stored blocks that failed their hash check when read (refused, not served).",
		}),
		blockRepairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_block_repairs_total",
			Help: "Corrupt stored blocks dropped and fetched again, verified, from another holder.",
		}),
		reported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_reported_failures_total",
			Help: "Failures visitors' workers reported about this node (verification failures are reason bad-block), relayed by the coordinator.",
		}, []string{"reason"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "verity_node_request_duration_seconds", Help: "Time to serve a request, by transport.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"transport"}),
		paidSessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_paid_sessions_total", Help: "Sessions admitted with a valid voucher.",
		}),
		baoStreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_bao_streams_total", Help: "Stream responses whose CAR was sent in the bao16 block encoding.",
		}),
		unpaidStreams: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_unpaid_streams_total", Help: "Streams served without a voucher.",
		}),
		refusedStreams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_payment_refused_streams_total", Help: "Streams refused with 402, by payment code.",
		}, []string{"code"}),
		unpaidRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_http_refused_total", Help: "Content requests on the HTTP port refused with 402 by a node that requires payment: not signed by a gateway key nor a node with its grant.",
		}),
		receipts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_receipts_total", Help: "Receipts received on streams, by result (ok or a payment code).",
		}, []string{"result"}),
		receiptedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_receipted_bytes_total", Help: "Verified bytes covered by accepted receipts.",
		}),
		creditStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_credit_stalls_total", Help: "Times a stream waited for a receipt with its credit window spent.",
		}),
		creditCuts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_payment_resets_total", Help: "Streams reset for payment, by reason (refused, timeout).",
		}, []string{"reason"}),
		settlements: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_settlements_total", Help: "Settlement batches submitted, by result.",
		}, []string{"result"}),
		settledBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_settled_bytes_total", Help: "Bytes the ledger settled to this node.",
		}),
		settleRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "verity_node_settle_refused_items_total", Help: "Sessions the ledger refused to settle, by code.",
		}, []string{"code"}),
		pinFetched: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_node_pin_fetched_bytes_total", Help: "CAR bytes fetched for pin orders (from the gateway or other holders).",
		}),
	}
	m.registry.MustRegister(m.collectors()...)
	return m
}

// addBlocks counts n more (or, negative, fewer) stored blocks.
func (m *metrics) addBlocks(n int) {
	m.blocks.Add(int64(n))
	m.blocksStored.Add(float64(n))
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.bytesSent, m.blocksStored, m.wtSessions, m.certRotations, m.corruptBlocks, m.blockRepairs, m.reported, m.requestDuration,
		m.paidSessions, m.unpaidStreams, m.baoStreams, m.refusedStreams, m.unpaidRefused, m.receipts, m.receiptedBytes, m.creditStalls, m.creditCuts,
		m.settlements, m.settledBytes, m.settleRefused, m.pinFetched}
}

// alsoRegister registers the node's collectors with reg, labelled node=id.
func (m *metrics) alsoRegister(reg prometheus.Registerer, id string) error {
	wrapped := prometheus.WrapRegistererWith(prometheus.Labels{"node": id}, reg)
	for _, c := range m.collectors() {
		if err := wrapped.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// instrument counts requests, bytes and durations for one transport.
func (m *metrics) instrument(transport string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		m.inflight.Add(1)
		defer func() {
			m.inflight.Add(-1)
			status := ww.Status()
			if status == 0 {
				status = http.StatusOK
			}
			m.requests.WithLabelValues(transport, statusLabel(status)).Inc()
			m.bytesSent.WithLabelValues(transport).Add(float64(ww.BytesWritten()))
			m.requestDuration.WithLabelValues(transport).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(ww, r)
	})
}

func statusLabel(code int) string {
	if code < 100 || code > 999 {
		return "other"
	}
	return string([]byte{byte('0' + code/100), byte('0' + code/10%10), byte('0' + code%10)})
}

// counted counts what is read through it as fetched for a pin.
type counted struct {
	r io.Reader
	c prometheus.Counter
}

func (c counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.c.Add(float64(n))
	return n, err
}
