package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// A node holding more sessions of an account than one coordinator message
// can carry settles them all in several batches, without its connection
// being closed for an oversized message.
func TestManySessionsSettle(t *testing.T) {
	const sessions = 200
	pn := newPayNet(t, node.PaymentConfig{Policy: payment.SettlePolicy{MaxInterval: time.Hour}}, 64<<20)
	ctx := t.Context()
	got := make(map[payment.SessionKey]uint64, sessions)
	var want uint64
	for range sessions {
		w := pn.worker(t, testAccount, time.Hour)
		n, err := w.fetch(ctx, pn, "a.txt", true)
		if err != nil {
			t.Fatal(err)
		}
		got[w.signer.SessionKey()] = uint64(n)
		want += uint64(n)
	}
	// The last receipt of a stream is stored after the client's FIN.
	testutil.EventuallyErr(t, 10*time.Second, "every session's last receipt", func() error {
		for k, n := range got {
			if e, _ := pn.node.Receipts(k); e.Receipt.Bytes != n {
				return fmt.Errorf("session %s: receipt for %d of %d bytes", k, e.Receipt.Bytes, n)
			}
		}
		return nil
	})
	applied, err := pn.node.SettleNow(ctx)
	if err != nil {
		t.Fatalf("settle: %v (applied %d of %d)", err, applied, want)
	}
	for k, n := range got {
		if e, _ := pn.node.Receipts(k); e.Settled != n {
			t.Fatalf("session %s: settled %d of %d bytes", k, e.Settled, n)
		}
	}
	earn, err := pn.coord.Ledger().Earnings(ctx, pn.node.ID())
	if err != nil || earn.Earned < want {
		t.Fatalf("earnings %+v, %v; want at least %d", earn, err, want)
	}
}
