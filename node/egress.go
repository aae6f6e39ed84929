package node

import (
	"context"
	"net/http"

	"golang.org/x/time/rate"
)

// egressChunk is the most one write takes from the egress budget at once.
const egressChunk = 32 << 10

// limitEgress paces the content bodies next writes (over every transport:
// HTTP, WebTransport streams, WebRTC channels share the same handler) to
// lim, a node-wide budget of bytes per second (Config.MaxEgress).
func limitEgress(lim *rate.Limiter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&egressWriter{ResponseWriter: w, lim: lim, ctx: r.Context()}, r)
	})
}

type egressWriter struct {
	http.ResponseWriter
	lim *rate.Limiter
	ctx context.Context
}

func (w *egressWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), egressChunk)
		if err := w.lim.WaitN(w.ctx, c); err != nil {
			return n, err
		}
		m, err := w.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		p = p[c:]
	}
	return n, nil
}

// Flush passes flushes through (the trustless handler streams CARs).
func (w *egressWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the transport's writer.
func (w *egressWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newEgressLimiter returns the limiter for bytesPerSec, nil for unlimited.
func newEgressLimiter(bytesPerSec int64) *rate.Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	return rate.NewLimiter(rate.Limit(bytesPerSec), max(egressChunk, int(bytesPerSec/10)))
}
