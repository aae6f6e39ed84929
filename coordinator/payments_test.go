package coordinator_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/node"
)

// paySeen collects what a node client was pushed.
type paySeen struct {
	mu       sync.Mutex
	keys     map[payment.KeyID]bool
	accounts map[string]nodeproto.AccountState
	full     int
}

func (p *paySeen) on(m nodeproto.Payments) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m.Full {
		p.full++
		p.accounts = map[string]nodeproto.AccountState{}
	}
	p.keys = map[payment.KeyID]bool{}
	for _, k := range m.GatewayKeys {
		p.keys[payment.KeyIDOf(k)] = true
	}
	for _, a := range m.Accounts {
		p.accounts[a.Name] = a
	}
}

func (p *paySeen) hasKey(pub ed25519.PublicKey) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.keys[payment.KeyIDOf(pub)]
}

func (p *paySeen) account(name string) (nodeproto.AccountState, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.accounts[name]
	return a, ok
}

// Nodes learn gateway keys, balances and freezes from their coordinator,
// and settle over the same connection; the coordinator applies a batch
// only for the connected node's own key.
func TestPaymentsPushedAndSettled(t *testing.T) {
	e := newEnv(t, nil)
	ctx := ctxT(t)
	gw1, _, _ := ed25519.GenerateKey(nil)
	if err := coordinator.PublishGatewayKey(ctx, e.bus, "gw1", gw1); err != nil {
		t.Fatal(err)
	}
	l := e.coord.Ledger()
	if _, err := l.CreateAccount(ctx, "acme", 1<<20); err != nil {
		t.Fatal(err)
	}
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	seen := &paySeen{}
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		OnPayments: seen.on,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := l.CreateAccount(ctx, "other", 1<<20); err != nil {
		t.Fatal(err)
	}
	// A node is pushed only the accounts it serves, once it asks for them
	// (MsgWatch; a Watch before the session is up is dropped, hence the
	// repeat).
	eventually(t, "gateway key and the watched frozen account pushed", func() bool {
		nc.Watch([]string{"acme"})
		a, ok := seen.account("acme")
		return seen.hasKey(gw1) && ok && a.Frozen
	})
	gw2pub, gw2, _ := ed25519.GenerateKey(nil)
	if err := coordinator.PublishGatewayKey(ctx, e.bus, "gw2", gw2pub); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(ctx, "other", 8<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(ctx, "acme", 8<<20); err != nil {
		t.Fatal(err)
	}
	eventually(t, "new key and unfrozen balance pushed", func() bool {
		a, _ := seen.account("acme")
		return seen.hasKey(gw2pub) && !a.Frozen && a.Balance == 8<<20
	})
	// "other" changed before "acme" did: had it been pushed, it would be
	// here by now.
	if a, ok := seen.account("other"); ok {
		t.Fatalf("an account the node does not serve was pushed: %+v", a)
	}

	// A session paid with gw2's voucher, receipts made out to this node.
	var me payment.NodeKey
	copy(me[:], k.pub)
	item := func(node payment.NodeKey, bytes uint64, key ed25519.PrivateKey) nodeproto.BatchItem {
		s, _ := payment.NewSigner(payment.SignerConfig{})
		v := payment.Voucher{Account: "acme", Session: s.SessionKey(), Budget: 1 << 20, NodeCap: 1 << 20,
			Nodes: []payment.NodeTag{payment.TagOf(node)}, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
		_, _ = rand.Read(v.Nonce[:])
		if err := v.Sign(key); err != nil {
			t.Fatal(err)
		}
		_ = s.SetVoucher(v)
		r, _, err := s.Verified(node, bytes)
		if err != nil {
			t.Fatal(err)
		}
		if r, _, err = s.Flush(node); err != nil {
			t.Fatal(err)
		}
		vb, _ := v.MarshalBinary()
		rb, _ := r.MarshalBinary()
		return nodeproto.BatchItem{Voucher: vb, Receipt: rb}
	}
	_, stranger, _ := ed25519.GenerateKey(nil)
	good := item(me, 1000, gw2)
	forged := item(me, 500, stranger)
	ans, err := nc.Settle(ctx, nodeproto.Batch{Node: me, Account: "acme", Items: []nodeproto.BatchItem{good, forged}})
	if err != nil || ans.Code != "" || ans.Result == nil || ans.Result.Applied != 1000 {
		t.Fatalf("settle: %+v, %v", ans, err)
	}
	if len(ans.Rejected) != 1 || ans.Rejected[0].Index != 1 || ans.Rejected[0].Code != "unknown_gateway" {
		t.Fatalf("rejected %+v, want item 1 unknown_gateway", ans.Rejected)
	}
	// Replayed: nothing applied.
	if ans, err := nc.Settle(ctx, nodeproto.Batch{Node: me, Account: "acme", Items: []nodeproto.BatchItem{good}}); err != nil || ans.Result == nil || ans.Result.Applied != 0 {
		t.Fatalf("replayed settle: %+v, %v", ans, err)
	}
	// Another node's batch over this node's connection.
	other := newKey(t)
	var otherKey payment.NodeKey
	copy(otherKey[:], other.pub)
	if ans, err := nc.Settle(ctx, nodeproto.Batch{Node: otherKey, Account: "acme", Items: []nodeproto.BatchItem{item(otherKey, 10, gw2)}}); err != nil || ans.Code != nodeproto.SettleCodeWrongNode {
		t.Fatalf("settling as another node: %+v, %v", ans, err)
	}
	if ans, err := nc.Settle(ctx, nodeproto.Batch{Node: me, Account: "nobody", Items: []nodeproto.BatchItem{good}}); err != nil || ans.Code != nodeproto.SettleCodeUnknown {
		t.Fatalf("unknown account: %+v, %v", ans, err)
	}
	a, _ := l.Account(ctx, "acme")
	if a.Balance != 8<<20-1000 {
		t.Fatalf("balance %d", a.Balance)
	}
	// A node replaying batches without end is refused after a burst: each
	// costs signature checks even when it applies nothing.
	for i := 0; ; i++ {
		ans, err := nc.Settle(ctx, nodeproto.Batch{Node: me, Account: "acme", Items: []nodeproto.BatchItem{good}})
		if err != nil {
			t.Fatal(err)
		}
		if ans.Code == nodeproto.SettleCodeRateLimited {
			break
		}
		if i == 300 {
			t.Fatalf("%d replayed batches answered, last %+v", i, ans)
		}
	}
}
