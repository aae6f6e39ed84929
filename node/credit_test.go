package node_test

import (
	"errors"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// A worker that never pays cannot get a fresh credit window on every new
// stream of its session: once the session owes the write-off allowance,
// its new streams are refused with over_budget.
func TestUnpayingWorkerRefusedAcrossStreams(t *testing.T) {
	const window = 512 << 10
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: window, ReceiptTimeout: 100 * time.Millisecond}, 64<<20)
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
			// A paying session is still served in full.
			w2 := pn.worker(t, testAccount, time.Hour)
			if got, err := w2.fetch(t.Context(), pn, "big.bin", true); err != nil || got < int64(len(pn.fx.big)) {
				t.Fatalf("paying worker: %d bytes, %v", got, err)
			}
			return
		}
		if code, ok := resetCode(err); !ok || code != wire.CodePaymentTimeout {
			t.Fatalf("stream %d: %v, want a reset with CodePaymentTimeout", i, err)
		}
	}
	t.Fatalf("40 unpaid streams served, %d bytes without a receipt", free)
}
