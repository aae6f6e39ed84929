package coordinator_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/node"
)

// A node that lost its holding of a root (it said "pinned" and failed the
// storage audit) earns nothing under vouchers for that root, even with
// receipts a visitor signed; for other roots it is paid as before.
func TestFailedHoldingEarnsNothing(t *testing.T) {
	e := newEnv(t, func(c *coordinator.Config) {
		c.URLProver = acceptURLs{}
		coordinator.FailAudits(c)
	})
	ctx := ctxT(t)
	gwPub, gw, _ := ed25519.GenerateKey(nil)
	if err := coordinator.PublishGatewayKey(ctx, e.bus, "gw", gwPub); err != nil {
		t.Fatal(err)
	}
	l := e.coord.Ledger()
	if _, err := l.CreateAccount(ctx, "acme", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(ctx, "acme", 64<<20); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	var payments atomic.Bool
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		// It says it pinned whatever it is asked to: a liar.
		OnPin:      func(context.Context, nodeproto.Pin) error { return nil },
		OnPayments: func(nodeproto.Payments) { payments.Store(true) },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "the node live", func() bool {
		live, err := e.coord.LiveNodes(ctx)
		return err == nil && len(live) == 1
	})
	lost := cidOf(t, "a root it lied about")
	if _, err := e.coord.Place(ctx, events.SiteDeployed{Root: lost, Replicas: 1, CAR: "http://127.0.0.1:1/x.car"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the holding failed by its audit", func() bool {
		p, ok := e.coord.Placement(lost)
		return ok && p.Nodes[k.id].State == coordinator.HolderFailed
	})

	var me payment.NodeKey
	copy(me[:], k.pub)
	item := func(root string, bytes uint64) nodeproto.BatchItem {
		s, _ := payment.NewSigner(payment.SignerConfig{})
		v := payment.Voucher{Account: "acme", Root: root, Session: s.SessionKey(), Budget: 1 << 20, NodeCap: 1 << 20,
			Nodes: []payment.NodeTag{payment.TagOf(me)}, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
		_, _ = rand.Read(v.Nonce[:])
		if err := v.Sign(gw); err != nil {
			t.Fatal(err)
		}
		_ = s.SetVoucher(v)
		if _, _, err := s.Verified(me, bytes); err != nil {
			t.Fatal(err)
		}
		r, _, err := s.Flush(me)
		if err != nil {
			t.Fatal(err)
		}
		vb, _ := v.MarshalBinary()
		rb, _ := r.MarshalBinary()
		return nodeproto.BatchItem{Voucher: vb, Receipt: rb}
	}
	// The coordinator announces payments after its welcome: until then the
	// client takes no settlement (a loaded run settled too early).
	eventually(t, "payments announced to the node", payments.Load)
	ans, err := nc.Settle(ctx, nodeproto.Batch{Node: me, Account: "acme", Items: []nodeproto.BatchItem{
		item(lost, 4000), item(cidOf(t, "another root"), 1000), item(lost, 2000),
	}})
	if err != nil || ans.Code != "" || ans.Result == nil {
		t.Fatalf("settle: %+v, %v", ans, err)
	}
	if ans.Result.Applied != 1000 || len(ans.Result.Items) != 1 || ans.Result.Items[0].Index != 1 {
		t.Fatalf("paid %d for items %+v, want 1000 for item 1 only", ans.Result.Applied, ans.Result.Items)
	}
	if len(ans.Rejected) != 2 || ans.Rejected[0].Index != 0 || ans.Rejected[1].Index != 2 ||
		ans.Rejected[0].Code != nodeproto.SettleCodeFailedHolding || ans.Rejected[1].Code != nodeproto.SettleCodeFailedHolding {
		t.Fatalf("rejected %+v, want items 0 and 2 failed_holding", ans.Rejected)
	}
	if a, _ := l.Account(ctx, "acme"); a.Balance != 64<<20-1000 {
		t.Fatalf("balance %d, want only the other root's 1000 bytes paid", a.Balance)
	}
}

func cidOf(t *testing.T, data string) string {
	t.Helper()
	c, err := cid.Sum(cid.CodecRaw, cid.HashBLAKE3, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}
