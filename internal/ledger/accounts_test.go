package ledger_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
)

func TestChargeOnceAndFreeze(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 10*blk, 8*blk)
	wait := collect(t, e.bus, events.TypeGatewayCharged, events.TypeAccountFrozen)

	r, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: 1, Sites: map[string]uint64{"blog": blk}})
	if err != nil || r.Applied != blk || r.Balance != 9*blk || r.Frozen {
		t.Fatalf("first charge: %+v, %v", r, err)
	}
	// A replayed batch applies nothing.
	r, err = e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: 1, Sites: map[string]uint64{"blog": blk}})
	if err != nil || r.Applied != 0 || r.Balance != 9*blk {
		t.Fatalf("replay: %+v, %v", r, err)
	}
	// Another gateway's batches are numbered on their own.
	r, err = e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw2", Seq: 1, Sites: map[string]uint64{"shop": 2 * blk}})
	if err != nil || r.Applied != 2*blk || r.Balance != 7*blk || !r.Frozen {
		t.Fatalf("gw2: %+v, %v", r, err)
	}
	evs := wait(3)
	var charged uint64
	frozen := 0
	for _, ev := range evs {
		switch ev.Type {
		case events.TypeGatewayCharged:
			var c events.GatewayCharged
			if err := ev.Decode(&c); err != nil {
				t.Fatal(err)
			}
			charged += c.Bytes
		case events.TypeAccountFrozen:
			frozen++
		}
	}
	if charged != 3*blk || frozen != 1 {
		t.Fatalf("events: charged %d, frozen %d", charged, frozen)
	}
	a, _ := e.l.Account(ctx, "acme")
	if a.Charged != 3*blk || a.Spent != 0 || !a.Frozen {
		t.Fatalf("account %+v", a)
	}

	bad := map[string]ledger.Charge{
		"no gateway": {Account: "acme", Seq: 9, Sites: map[string]uint64{"blog": 1}},
		"seq 0":      {Account: "acme", Gateway: "gw1", Sites: map[string]uint64{"blog": 1}},
		"no bytes":   {Account: "acme", Gateway: "gw1", Seq: 9},
	}
	for name, c := range bad {
		if _, err := e.l.ApplyCharge(ctx, c); !errors.Is(err, ledger.ErrInvalidCharge) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "nobody", Gateway: "gw1", Seq: 1, Sites: map[string]uint64{"x": 1}}); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("unknown account: %v", err)
	}
	if _, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "No Such", Gateway: "gw1", Seq: 1, Sites: map[string]uint64{"x": 1}}); !errors.Is(err, ledger.ErrInvalidAccount) {
		t.Errorf("invalid account: %v", err)
	}
}

// TestDashboardMatchesSettlements: spend by site and node, as settled from
// signed vouchers and receipts and charged by gateways, adds up.
func TestDashboardMatchesSettlements(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 1000*blk, 1)
	a, b := nodeKey("a"), nodeKey("b")
	blog := newSiteSession(t, "acme", "blog", "s1", 100*blk)
	shop := newSiteSession(t, "acme", "shop", "s2", 100*blk)
	bare := newSession(t, "acme", "s3", 100*blk)
	wait := collect(t, e.bus, events.TypeReceiptsSettled)

	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: a, Account: "acme", Items: []nodeproto.BatchItem{
		blog.deliver(t, a, 3), shop.deliver(t, a, 2), bare.deliver(t, a, 1)}}); err != nil {
		t.Fatal(err)
	}
	fromB := blog.deliver(t, b, 4)
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: b, Account: "acme", Items: []nodeproto.BatchItem{fromB}}); err != nil {
		t.Fatal(err)
	}
	// A replay changes nothing.
	if r, err := e.l.Settle(ctx, nodeproto.Batch{Node: b, Account: "acme", Items: []nodeproto.BatchItem{fromB}}); err != nil || r.Applied != 0 {
		t.Fatalf("replay: %+v %v", r, err)
	}
	if _, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: 5, Sites: map[string]uint64{"blog": 100, "shop": 50}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.l.Dashboard(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	wantSites := map[string]ledger.SiteSpend{
		"blog":        {Nodes: 7 * blk, Gateway: 100},
		"shop":        {Nodes: 2 * blk, Gateway: 50},
		ledger.NoSite: {Nodes: 1 * blk},
	}
	if !reflect.DeepEqual(d.Sites, wantSites) {
		t.Errorf("sites %+v, want %+v", d.Sites, wantSites)
	}
	wantNodes := map[string]uint64{a.String(): 6 * blk, b.String(): 4 * blk}
	if !reflect.DeepEqual(d.Nodes, wantNodes) {
		t.Errorf("nodes %+v, want %+v", d.Nodes, wantNodes)
	}
	if d.Spend != (ledger.Spend{Total: 10*blk + 150, Nodes: 10 * blk, Gateway: 150}) {
		t.Errorf("spend %+v", d.Spend)
	}
	if d.Account.Balance != 1000*blk-10*blk-150 || len(d.TopUps) != 1 || d.TopUps[0].Bytes != 1000*blk {
		t.Errorf("balance %d, top-ups %+v", d.Account.Balance, d.TopUps)
	}
	for _, n := range []struct {
		key  string
		want uint64
	}{{a.String(), 6 * blk}, {b.String(), 4 * blk}} {
		earn, err := e.l.Earnings(ctx, n.key)
		if err != nil || earn.Earned != n.want || earn.From["acme"] != n.want {
			t.Errorf("earnings %s: %+v %v", n.key, earn, err)
		}
	}
	// receipts.settled splits its bytes by site.
	bySite := map[string]uint64{}
	for _, ev := range wait(2) {
		var s events.ReceiptsSettled
		if err := ev.Decode(&s); err != nil {
			t.Fatal(err)
		}
		for k, v := range s.Sites {
			bySite[k] += v
		}
	}
	if want := map[string]uint64{"blog": 7 * blk, "shop": 2 * blk, ledger.NoSite: blk}; !reflect.DeepEqual(bySite, want) {
		t.Errorf("receipts.settled sites %+v, want %+v", bySite, want)
	}
}

func TestStatement(t *testing.T) {
	e := newEnv(t, ledger.Config{})
	ctx := ctxT(t)
	e.account(t, "acme", 100*blk, 1)
	e.account(t, "other", 5*blk, 1)
	n := nodeKey("a")
	s := newSiteSession(t, "acme", "blog", "s1", 100*blk)
	if _, err := e.l.Settle(ctx, nodeproto.Batch{Node: n, Account: "acme", Items: []nodeproto.BatchItem{s.deliver(t, n, 2)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: 1, Sites: map[string]uint64{"blog": 10}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.TopUp(ctx, "acme", 7); err != nil {
		t.Fatal(err)
	}
	st, err := e.l.Statement(ctx, "acme", ledger.StatementQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for i, en := range st {
		types = append(types, en.Type)
		if en.Account != "acme" || (i > 0 && en.Revision <= st[i-1].Revision) {
			t.Errorf("entry %d: %+v", i, en)
		}
	}
	if want := []string{ledger.EntryCreate, ledger.EntryTopUp, ledger.EntrySettle, ledger.EntryCharge, ledger.EntryTopUp}; !reflect.DeepEqual(types, want) {
		t.Fatalf("types %v, want %v", types, want)
	}
	if st[2].Node != n.String() || st[2].Bytes != 2*blk || st[2].Sites["blog"] != 2*blk || st[2].Balance != 98*blk {
		t.Errorf("settle entry %+v", st[2])
	}
	if st[3].Gateway != "gw1" || st[3].Bytes != 10 || st[4].Balance != 98*blk-10+7 {
		t.Errorf("charge/topup entries %+v %+v", st[3], st[4])
	}
	last, err := e.l.Statement(ctx, "acme", ledger.StatementQuery{Limit: 2})
	if err != nil || len(last) != 2 || last[0].Type != ledger.EntryCharge {
		t.Fatalf("limit 2: %+v %v", last, err)
	}
	for limit := 1; limit <= 6; limit++ {
		got, err := e.l.Statement(ctx, "acme", ledger.StatementQuery{Limit: limit})
		if err != nil || !reflect.DeepEqual(got, st[max(0, len(st)-limit):]) {
			t.Fatalf("limit %d: %+v %v", limit, got, err)
		}
	}
	tops, err := e.l.Statement(ctx, "acme", ledger.StatementQuery{Type: ledger.EntryTopUp})
	if err != nil || len(tops) != 2 {
		t.Fatalf("top-ups: %+v %v", tops, err)
	}
	if _, err := e.l.Statement(ctx, "nobody", ledger.StatementQuery{}); !errors.Is(err, ledger.ErrUnknownAccount) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := e.l.Statement(ctx, "Bad Name", ledger.StatementQuery{}); !errors.Is(err, ledger.ErrInvalidAccount) {
		t.Errorf("invalid: %v", err)
	}
	names, err := e.l.Accounts(ctx)
	if err != nil || !reflect.DeepEqual(names, []string{"acme", "other"}) {
		t.Errorf("accounts %v %v", names, err)
	}
}
