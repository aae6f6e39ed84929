package node_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// A worker that never pays cannot get a fresh credit window on every new
// stream of its session: once the session owes the write-off allowance,
// its new streams are refused with over_budget.
func TestUnpayingWorkerRefusedAcrossStreams(t *testing.T) {
	const window = 512 << 10
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: testutil.Scale(100 * time.Millisecond)}, 64<<20)
	w := pn.worker(t, testAccount, time.Hour)
	var free int64
	for i := range 40 {
		got, err := w.fetch(t.Context(), pn, "big.bin", false)
		free += got
		var se *wire.StatusError
		if errors.As(err, &se) {
			if se.PaymentCode != "over_budget" {
				t.Fatalf("stream %d: %v (code %q), want over_budget", i, err, se.PaymentCode)
			}
			if limit := int64(17 * window); free > limit {
				t.Fatalf("%d bytes verified without paying, more than %d", free, limit)
			}
			// A paying session is still served in full. Its receipts
			// must reach the node within the short receipt timeout, which
			// a loaded machine can miss: only a reset for that is tried
			// again, never a refusal.
			w2 := pn.worker(t, testAccount, time.Hour)
			for try := 1; ; try++ {
				got, err := w2.fetch(t.Context(), pn, "big.bin", true)
				if code, ok := resetCode(err); ok && code == wire.CodePaymentTimeout && try < 5 {
					continue
				}
				if err != nil || got < int64(len(pn.fx.big)) {
					t.Fatalf("paying worker: %d bytes, %v", got, err)
				}
				return
			}
		}
		if code, ok := resetCode(err); !ok || code != wire.CodePaymentTimeout {
			t.Fatalf("stream %d: %v, want a reset with CodePaymentTimeout", i, err)
		}
	}
	t.Fatalf("40 unpaid streams served, %d bytes without a receipt", free)
}

// A worker that stops reading a paid stream (a cancelled fetch, a video
// seek) frees the stream's place at once, even while the node waits for
// a receipt: the node does not hold the handler until its receipt
// timeout, which would leave a session that cancels a few streams unable
// to open another.
func TestCancelledPaidStreamFreesItsPlace(t *testing.T) {
	const window = 512 << 10
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: time.Hour}, 64<<20)
	pn.nodeConfig = func(c *node.Config) { c.MaxStreamsPerSession = 2 }
	n, sess := pn.addNode(t)
	w := newTestWorkerFor(t, pn.gwKey, testAccount, time.Hour, n.ID())
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(30*time.Second))
	defer cancel()
	root, err := cid.Parse(pn.fx.root.String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		str, err := sess.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req := &wire.Request{Target: verify.Request{Root: root, Path: []string{"big.bin"}}.Target(), Header: wire.Header{}}
		req.Header.Set("accept", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
		req.Header.Set(wire.HeaderVoucher, w.enc)
		if _, err := req.WriteTo(str); err != nil {
			t.Fatal(err)
		}
		// Most of the credit window, and no receipt: the node sends the
		// rest of the window and waits for one.
		if _, err := io.ReadFull(str, make([]byte, window*3/4)); err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		str.CancelRead(0)
		_ = str.Close()
	}
	// Both places were taken by cancelled streams; a new one is served.
	if got, err := w.fetchOn(ctx, sess, pn.fx, "a.txt", true); err != nil || got == 0 {
		t.Fatalf("a stream after cancelled ones: %d bytes, %v", got, err)
	}
}
