package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// auditEvents collects node.audit_failed events.
func auditEvents(t *testing.T, bus *events.Bus) <-chan events.NodeAuditFailed {
	t.Helper()
	ch := make(chan events.NodeAuditFailed, 16)
	sub, err := bus.Subscribe(t.Context(), "audit-test", func(_ context.Context, ev events.Event) error {
		var a events.NodeAuditFailed
		if err := ev.Decode(&a); err == nil {
			ch <- a
		}
		return nil
	}, events.TypeNodeAuditFailed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return ch
}

func nextAuditFailure(t *testing.T, ch <-chan events.NodeAuditFailed) events.NodeAuditFailed {
	t.Helper()
	var got events.NodeAuditFailed
	waitFor(t, "node.audit_failed", func() bool {
		select {
		case got = <-ch:
			return true
		default:
			return false
		}
	})
	return got
}

// A hostile node answers "pinned" to its pin order without fetching
// anything. With replicas 2 and one real node, the site used to be
// published on one real copy, and visitors were sent to the hostile node.
// Now its claim is audited first: it fails (the blocks are not there),
// loses the holding, is penalized, node.audit_failed is emitted, and the
// site is published only once a second real node holds the root. The
// hostile node is never in a visitor's session.
func TestFakePinnedNotCounted(t *testing.T) {
	bus := openBus(t, "gw-audit-fake")
	tg, _ := startStack(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{})
	failures := auditEvents(t, bus)
	startNodes(t, tg, 1)
	liar := joinNodeWith(t, tg, 41, sitetest.RecordAt(t, 41, "127.0.0.1"), func(c *node.CoordClientConfig) {
		c.OnPin = func(context.Context, nodeproto.Pin) error { return nil } // "pinned", holds nothing
	})
	liarID := sitetest.RecordAt(t, 41, "127.0.0.1").Record.NodeID
	waitFor(t, "both nodes live", func() bool {
		live, _ := tg.Coordinator().LiveNodes(t.Context())
		return len(live) == 2 && liar.State().Joined
	})

	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	f := nextAuditFailure(t, failures)
	if f.Node != liarID || f.Root != root || f.Block != root {
		t.Fatalf("audit failure %+v, want the liar on the root block", f)
	}
	waitFor(t, "the liar's holding dropped", func() bool {
		p, _ := tg.Coordinator().Placement(root)
		h := p.Nodes[liarID]
		return h.State == coordinator.HolderFailed && strings.Contains(h.Error, "audit")
	})
	if st := tg.siteStatus(t, "blog", token); st.Site != nil {
		t.Fatalf("published with one real copy: %+v", st.Site)
	}
	if !tg.Coordinator().Router().Penalized(liarID) {
		t.Fatal("the liar is not ranked down")
	}

	// A second real node takes the copy the liar could not hold.
	startNodeAt(t, tg, t.TempDir())
	waitFor(t, "published on two real copies", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	p, _ := tg.Coordinator().Placement(root)
	if pinned := p.Holders(coordinator.HolderPinned); len(pinned) != 2 || slices.Contains(pinned, liarID) {
		t.Fatalf("pinned holders %v", pinned)
	}
	for _, n := range tg.session(t, "blog").Nodes {
		if n.ID == liarID {
			t.Fatal("the liar is listed to visitors")
		}
	}
}

// A holder that passed its first audit and then loses a block (here, the
// root block) fails a later random audit: its holding is dropped, it is
// penalized, node.audit_failed names it, and the root is re-replicated on
// the node that had none, so two verified copies are live again.
func TestFailedAuditDropsHoldingAndRereplicates(t *testing.T) {
	bus := openBus(t, "gw-audit-drop")
	tg, _ := startStackWith(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin}, gateway.Config{},
		func(c *coordinator.Config) { c.AuditInterval = 100 * time.Millisecond })
	failures := auditEvents(t, bus)
	nodes := startNodes(t, tg, 3)
	token := tg.createSite(t, "blog")
	carBytes, root := siteCAR(t, sitetest.Files())
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, carBytes); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish", func() bool {
		st := tg.siteStatus(t, "blog", token)
		return st.Site != nil && st.Site.Root == root
	})
	p, _ := tg.Coordinator().Placement(root)
	held := p.Holders(coordinator.HolderPinned)
	if len(held) != 2 {
		t.Fatalf("pinned holders %v", held)
	}
	var bad, spare *node.Node
	for _, n := range nodes {
		switch {
		case n.ID() == held[0]:
			bad = n
		case !slices.Contains(held, n.ID()):
			spare = n
		}
	}
	rc, err := gocid.Decode(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Blockstore().DeleteBlock(t.Context(), rc); err != nil {
		t.Fatal(err)
	}

	f := nextAuditFailure(t, failures)
	if f.Node != bad.ID() || f.Root != root {
		t.Fatalf("audit failure %+v, want %s on %s", f, bad.ID(), root)
	}
	waitFor(t, "re-replicated on the spare node", func() bool {
		live, _ := tg.Coordinator().PinnedLive(t.Context(), root)
		return len(live) == 2 && slices.Contains(live, spare.ID()) && !slices.Contains(live, bad.ID())
	})
	p, _ = tg.Coordinator().Placement(root)
	if h := p.Nodes[bad.ID()]; h.State != coordinator.HolderFailed || !strings.Contains(h.Error, "audit") {
		t.Fatalf("the failed holder: %+v", h)
	}
	if !tg.Coordinator().Router().Penalized(bad.ID()) {
		t.Fatal("the failed holder is not ranked down")
	}
	for _, n := range tg.session(t, "blog").Nodes {
		if n.ID == bad.ID() {
			t.Fatal("the session lists the failed holder")
		}
	}
}
