package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
)

// A visit pays the nodes: the worker asks the gateway for a voucher, sends
// it with each node stream and signs receipts for the blocks it verifies;
// the nodes hold receipts of that browser session and, after settlement,
// the site's account is debited by what the nodes are credited.
func TestVisitPaysNodes(t *testing.T) {
	e := newEnv(t, envConfig{})
	visitAndSettle(t, e, "webtransport")
}

// The same over WebRTC: receipts go back on the data channel through the
// page's bridge.
func TestVisitPaysNodesOverWebRTC(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	visitAndSettle(t, e, "webrtc")
}

func visitAndSettle(t *testing.T, e *env, transport string) {
	e.controlled()
	var fromNodes int64
	for _, f := range assets(e.files) {
		res := e.fetchFile(f)
		if tr, _ := res.Timing("verity"); tr == transport {
			fromNodes += f.Size
		}
	}
	if fromNodes == 0 {
		t.Fatal("no asset came from a node")
	}
	const account = "default"
	held := func() (sum uint64) {
		for _, n := range e.net.Nodes() {
			sum += n.Uncommitted()[account]
		}
		return sum
	}
	// The last receipt of a stream comes with the worker's FIN. Over
	// WebRTC the node closes the channel after the body, so the receipt
	// for a stream's tail (less than a block) may only come with the
	// session's next receipt: allow one block per stream.
	slack := uint64(0)
	if transport == "webrtc" {
		slack = uint64(len(assets(e.files))) * 256 << 10
	}
	testutil.EventuallyErr(t, 20*time.Second, "the nodes to hold receipts for the bytes they sent", func() error {
		if h := held(); h == 0 || h+slack < uint64(fromNodes) {
			return fmt.Errorf("nodes hold receipts for %d bytes; the page got %d bytes from nodes", h, fromNodes)
		}
		return nil
	})
	total := held()
	if total == 0 || total+slack < uint64(fromNodes) {
		t.Fatalf("nodes hold receipts for %d bytes; the page got %d bytes from nodes", total, fromNodes)
	}
	ms := e.nodeMetrics()
	if ok := sumNodes(ms, "verity_node_receipts_total", map[string]string{"result": "ok"}); ok == 0 {
		t.Fatal("no receipt counted in the nodes' metrics")
	}
	if bad := sumNodes(ms, "verity_node_payment_resets_total", nil); bad != 0 {
		t.Fatalf("%v paid streams reset", bad)
	}
	// The worker offers bao16 and the nodes use it: receipts above were
	// signed for blocks verified group by group, and the parents did not
	// eat into the credit windows.
	if n := sumNodes(ms, "verity_node_bao_streams_total", nil); n == 0 {
		t.Fatalf("no %s response was sent as a bao16 body", transport)
	}

	l := e.net.Coordinator().Ledger()
	ctx := e.ctx(30 * time.Second)
	before, err := l.Account(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	var applied, earned uint64
	for _, n := range e.net.Nodes() {
		a, err := n.SettleNow(ctx)
		if err != nil {
			t.Fatalf("settle %s: %v", n.ID(), err)
		}
		applied += a
		earn, err := l.Earnings(ctx, n.ID())
		if err != nil {
			t.Fatal(err)
		}
		earned += earn.From[account]
	}
	after, err := l.Account(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	if applied < total || earned != applied || before.Balance-after.Balance != int64(applied) {
		t.Fatalf("held %d; settled %d, earned %d, balance %d → %d", total, applied, earned, before.Balance, after.Balance)
	}
	t.Logf("page got %d bytes from nodes; nodes settled %d bytes; account %s: %d → %d", fromNodes, applied, account, before.Balance, after.Balance)
}
