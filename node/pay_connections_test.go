package node_test

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// One voucher, never a receipt, many WebTransport connections at once.
// The session's debt bound is one window per running stream plus the
// write-off, and streams are limited per connection only: a client opening
// C connections of S streams each under one voucher was owed C×S windows.
// The node loses at most a bounded number of windows per voucher
// (docs/payments.md: 17, plus one per extra concurrent stream of one
// connection), not one per stream of every connection it can open.
func TestCreditWindowBoundAcrossConnections(t *testing.T) {
	const (
		window  = 512 << 10
		streams = 8  // per connection (MaxStreamsPerSession)
		conns   = 12 // connections under the same voucher
	)
	pn := newPayNet(t, node.PaymentConfig{Require: true, CreditWindow: window, ReceiptTimeout: time.Minute}, 64<<20)
	pn.nodeConfig = func(c *node.Config) { c.MaxStreamsPerSession = streams }
	n, _ := pn.addNode(t)
	w := newTestWorkerFor(t, pn.gwKey, testAccount, time.Hour, n.ID())
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	root, err := cid.Parse(pn.fx.root.String())
	if err != nil {
		t.Fatal(err)
	}
	target := verify.Request{Root: root, Path: []string{"big.bin"}}.Target()
	var strs []*webtransport.Stream
	for range conns {
		sess := dialNode(ctx, t, n)
		for range streams {
			str, err := sess.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			req := &wire.Request{Target: target, Header: wire.Header{}}
			req.Header.Set("accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
			req.Header.Set(wire.HeaderVoucher, w.enc)
			if _, err := req.WriteTo(str); err != nil {
				t.Fatal(err)
			}
			strs = append(strs, str)
		}
	}
	var free atomic.Int64
	var wg sync.WaitGroup
	for _, str := range strs {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			for {
				// The node stalls a stream whose window is spent; a
				// second without data means it waits for a receipt.
				_ = str.SetReadDeadline(time.Now().Add(2 * time.Second))
				k, err := str.Read(buf)
				free.Add(int64(k))
				if err != nil {
					if err != io.EOF {
						str.CancelRead(0)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	bound := int64((16 + streams + 1) * window)
	t.Logf("%d streams on %d connections, one voucher, no receipt: %d bytes received (bound %d)", len(strs), conns, free.Load(), bound)
	if free.Load() > bound {
		t.Fatalf("unpaid bytes under one voucher: %d, more than %d (17 windows + one per extra stream of a connection)", free.Load(), bound)
	}
}
