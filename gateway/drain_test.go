package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// Attacks on the account paying for a site by a visitor who runs a node of
// its own (docs/security.md, "Payments"): it asks for sessions, signs
// receipts under their vouchers with the session keys it made itself, and
// settles them from its node without serving a byte.

// drainFunds is what the attacked account holds: far more than any bound
// below, so that only the bounds under test limit what an attacker takes.
const drainFunds = 1 << 40

// drainPerVoucher is the most a node may take under one voucher with the
// gateway's defaults: PaymentsConfig.NodeCap's default.
const drainPerVoucher = 16 << 20

// startDrainGateway runs a gateway and its coordinator with cfg, the site
// "demo" paid by the account "default", funded with drainFunds.
func startDrainGateway(t *testing.T, cfg Config) *testGateway {
	t.Helper()
	if cfg.Bus == nil {
		cfg.Bus = openBus(t, "gw-drain")
	}
	if cfg.Sites == nil {
		cfg.Sites = NewStaticSites(map[string]string{"demo": testCID(t, "drained site")})
	}
	// The hostile node's URLs are taken as proven: it would serve its
	// own proof (it runs a node), and the URL check is not what these
	// tests are about.
	tg := startCoordGateway(t, cfg, provenCoordinator())
	l := tg.Coordinator().Ledger()
	if _, err := l.CreateAccount(t.Context(), "default", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(t.Context(), "default", drainFunds); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the funded account", func() bool {
		a, ok := tg.Coordinator().Account("default")
		return ok && !a.Frozen
	})
	return tg
}

// settlingNode is a node key made on the spot, joined to the gateway's
// coordinator (so sessions list it) and able to submit settlement batches.
type settlingNode struct {
	key payment.NodeKey
	cc  *node.CoordClient
}

func joinSettlingNode(t *testing.T, tg *testGateway, seed byte) *settlingNode {
	t.Helper()
	rec := signedRecord(t, seed, fmt.Sprintf("http://127.0.0.1:%d", 4100+int(seed)), time.Now())
	h := &settlingNode{cc: joinNode(t, tg, seed, rec)}
	copy(h.key[:], sitetest.Key(seed).Public().(ed25519.PublicKey))
	waitFor(t, "the hostile node live", func() bool {
		live, err := tg.Coordinator().LiveNodes(t.Context())
		if err != nil {
			return false
		}
		return slices.ContainsFunc(live, func(s coordinator.NodeState) bool { return s.Node() == h.key.String() })
	})
	return h
}

// settle submits items as one batch from the hostile node and returns
// what the ledger applied.
func (h *settlingNode) settle(t *testing.T, items []nodeproto.BatchItem) nodeproto.Settled {
	t.Helper()
	var ans nodeproto.Settled
	waitFor(t, "a settlement answer", func() bool {
		var err error
		ans, err = h.cc.Settle(t.Context(), nodeproto.Batch{Node: h.key, Account: "default", Items: items})
		return err == nil
	})
	return ans
}

// loot is a voucher a hostile client got, with its session key.
type loot struct {
	voucher payment.Voucher
	raw     []byte
	priv    ed25519.PrivateKey
}

// grabVouchers asks for up to n sessions of "demo", each with a fresh
// session key, with the headers hdr, and returns the vouchers it got.
func grabVouchers(t *testing.T, tg *testGateway, n int, hdr ...string) []loot {
	t.Helper()
	var out []loot
	for range n {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var sk payment.SessionKey
		copy(sk[:], pub)
		resp, body := tg.get(t, tg.SiteURL("demo")+SessionPath[1:]+"?key="+sk.String(), hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("session: %d %s", resp.StatusCode, body)
		}
		var s api.Session
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		if s.Voucher == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Voucher)
		if err != nil {
			t.Fatal(err)
		}
		v, err := payment.ParseVoucher(raw)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, loot{voucher: v, raw: raw, priv: priv})
	}
	return out
}

// claimable is the most a receipt under v may claim for one node and
// still pass the receipt checks.
func claimable(v payment.Voucher) uint64 { return v.Cap() }

// forge signs, with the session key the client made, a receipt saying
// node delivered bytes under l's voucher.
func (l loot) forge(t *testing.T, node payment.NodeKey, bytes uint64) nodeproto.BatchItem {
	t.Helper()
	r := payment.Receipt{Voucher: l.voucher.ID(), Node: node, Bytes: bytes, Seq: 1}
	if err := r.Sign(payment.PrivateKey(l.priv)); err != nil {
		t.Fatal(err)
	}
	rb, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return nodeproto.BatchItem{Voucher: l.raw, Receipt: rb}
}

// The bound: a client whose own node the gateway chose for its sessions
// takes at most drainPerVoucher (the per-node cap, 16 MiB) per voucher,
// and gets at most VoucherBurst (30) vouchers at once per address, then
// one per 10 s: 480 MiB at once, ~6 GiB in an hour, per IPv4 address or
// IPv6 /64. Before vouchers named nodes and capped them, one batch moved
// 30 GiB (30 vouchers × 1 GiB).
func TestDrainByOwnNodeBounded(t *testing.T) {
	tg := startDrainGateway(t, Config{})
	mine := joinSettlingNode(t, tg, 41)
	vs := grabVouchers(t, tg, 40)
	if len(vs) == 0 || len(vs) > 30 {
		t.Fatalf("%d vouchers for one address; want 1 to VoucherBurst (30)", len(vs))
	}
	items := make([]nodeproto.BatchItem, len(vs))
	for i, l := range vs {
		items[i] = l.forge(t, mine.key, claimable(l.voucher))
	}
	ans := mine.settle(t, items)
	var applied uint64
	if ans.Result != nil {
		applied = ans.Result.Applied
	}
	bound := uint64(len(vs)) * drainPerVoucher
	t.Logf("%d vouchers; own node settled %d MiB without serving (bound %d MiB)", len(vs), applied>>20, bound>>20)
	if applied > bound {
		t.Fatalf("own node settled %d bytes under %d vouchers; bound %d (%d per voucher)", applied, len(vs), bound, drainPerVoucher)
	}
	a, err := tg.Coordinator().Ledger().Account(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if lost := drainFunds - a.Balance; lost < 0 || uint64(lost) > bound {
		t.Fatalf("account lost %d bytes; bound %d", lost, bound)
	}
}

// A node the gateway did not choose for a session (here: one made after
// the session was issued) can settle nothing under its voucher.
func TestDrainByUnchosenNodeRefused(t *testing.T) {
	tg := startDrainGateway(t, Config{})
	joinSettlingNode(t, tg, 42) // an honest node, chosen
	vs := grabVouchers(t, tg, 3)
	if len(vs) == 0 {
		t.Fatal("no voucher")
	}
	stranger := joinSettlingNode(t, tg, 43)
	items := make([]nodeproto.BatchItem, len(vs))
	for i, l := range vs {
		items[i] = l.forge(t, stranger.key, min(claimable(l.voucher), 1<<20))
	}
	ans := stranger.settle(t, items)
	if ans.Result != nil && ans.Result.Applied > 0 {
		t.Fatalf("a node no voucher names settled %d bytes", ans.Result.Applied)
	}
	if len(ans.Rejected) != len(items) {
		t.Fatalf("rejected %+v, want all %d items", ans.Rejected, len(items))
	}
	for _, r := range ans.Rejected {
		if r.Code != payment.Code(payment.ErrWrongNode) {
			t.Fatalf("rejected %+v, want %s", r, payment.Code(payment.ErrWrongNode))
		}
	}
}

// Addresses of one IPv6 /64 share one voucher budget, and so one bound on
// what their own node takes; behind a trusted proxy the client is the
// address it forwards for, and X-Forwarded-For from anyone else is
// ignored (else a client would name a new address per request).
func TestDrainPerIPv6Prefix(t *testing.T) {
	const burst = 3
	pc := PaymentsConfig{VoucherRate: 1e-6, VoucherBurst: burst}
	t.Run("trusted proxy", func(t *testing.T) {
		tg := startDrainGateway(t, Config{Payments: pc, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		mine := joinSettlingNode(t, tg, 44)
		var all []loot
		for i := range 8 {
			all = append(all, grabVouchers(t, tg, 1, "X-Forwarded-For", fmt.Sprintf("2001:db8:7:1::%x", i+1))...)
		}
		if len(all) != burst {
			t.Fatalf("%d vouchers for 8 addresses of one /64; want %d", len(all), burst)
		}
		if got := grabVouchers(t, tg, 1, "X-Forwarded-For", "2001:db8:7:2::1"); len(got) != 1 {
			t.Fatalf("another /64 got %d vouchers; want its own budget", len(got))
		}
		items := make([]nodeproto.BatchItem, len(all))
		for i, l := range all {
			items[i] = l.forge(t, mine.key, claimable(l.voucher))
		}
		ans := mine.settle(t, items)
		if ans.Result != nil && ans.Result.Applied > burst*drainPerVoucher {
			t.Fatalf("one /64 moved %d bytes; bound %d", ans.Result.Applied, burst*drainPerVoucher)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		tg := startDrainGateway(t, Config{Payments: pc, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		joinSettlingNode(t, tg, 45)
		var all []loot
		for i := range 8 {
			all = append(all, grabVouchers(t, tg, 1, "X-Forwarded-For", fmt.Sprintf("2001:db8:%x::1", i+1))...)
		}
		if len(all) != burst {
			t.Fatalf("%d vouchers for one peer naming 8 networks in X-Forwarded-For; want %d", len(all), burst)
		}
	})
}

// Every voucher holds its budget on the account (Config.Holds): once the
// vouchers issued and unexpired hold the balance, the next session gets
// none, so settling all of them, even by a client's own node claiming
// every voucher's cap without serving, cannot take the account below
// zero. Without holds the same 20 vouchers overdrew it by 128 MiB.
func TestVouchersHoldFunds(t *testing.T) {
	const funds = 12 * drainPerVoucher // 12 vouchers of one node's cap
	bus := openBus(t, "gw-hold")
	tg := startCoordGateway(t, Config{Bus: bus, Holds: coordHolds{},
		Sites: NewStaticSites(map[string]string{"demo": testCID(t, "held site")})}, provenCoordinator())
	l := tg.Coordinator().Ledger()
	if _, err := l.CreateAccount(t.Context(), "default", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.TopUp(t.Context(), "default", funds); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the funded account", func() bool {
		a, ok := tg.Coordinator().Account("default")
		return ok && !a.Frozen
	})
	mine := joinSettlingNode(t, tg, 44)
	vs := grabVouchers(t, tg, 20)
	if len(vs) != 12 {
		t.Fatalf("%d vouchers on an account funding 12", len(vs))
	}
	a, err := l.Account(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if a.Held != funds || a.Sessions != 12 {
		t.Fatalf("held %d bytes by %d vouchers; want %d by 12", a.Held, a.Sessions, uint64(funds))
	}
	items := make([]nodeproto.BatchItem, len(vs))
	for i, lt := range vs {
		items[i] = lt.forge(t, mine.key, claimable(lt.voucher))
	}
	mine.settle(t, items)
	if a, err = l.Account(t.Context(), "default"); err != nil {
		t.Fatal(err)
	}
	if a.Balance < 0 || a.Held != 0 {
		t.Fatalf("after settling every voucher: balance %d, held %d", a.Balance, a.Held)
	}
}

// sizedSites serves the site "demo" with a known size, as control's site
// records do for a deployed root.
type sizedSites struct {
	root string
	size int64
}

func (s sizedSites) Site(_ context.Context, name string) (Site, error) {
	if name != "demo" {
		return Site{}, fmt.Errorf("%w: %q", ErrUnknownSite, name)
	}
	return Site{Name: name, Root: s.root, Size: s.size}, nil
}

// A voucher is sized to the visit: for a site of 300 KB, twice its size
// but at least MinBudget (4 MiB) instead of the flat 64 MiB, and no node
// is paid more than that under it. So a client whose own node the gateway
// chose takes at most 4 MiB per voucher of a small site, not the 16 MiB
// per-node cap.
func TestDrainBoundedBySiteSize(t *testing.T) {
	tg := startDrainGateway(t, Config{Sites: sizedSites{root: testCID(t, "small site"), size: 300_000}})
	mine := joinSettlingNode(t, tg, 45)
	vs := grabVouchers(t, tg, 5)
	if len(vs) == 0 {
		t.Fatal("no voucher")
	}
	const bound = DefaultVoucherMinBudget
	items := make([]nodeproto.BatchItem, len(vs))
	for i, l := range vs {
		if l.voucher.Budget > bound || l.voucher.Cap() > bound {
			t.Fatalf("voucher budget %d, node cap %d for a 300 KB site; want at most %d", l.voucher.Budget, l.voucher.Cap(), bound)
		}
		items[i] = l.forge(t, mine.key, drainPerVoucher) // what the flat cap allowed
	}
	ans := mine.settle(t, items)
	if ans.Result != nil && ans.Result.Applied > uint64(len(vs))*bound {
		t.Fatalf("own node settled %d bytes under %d vouchers of a small site; bound %d each", ans.Result.Applied, len(vs), bound)
	}
	a, err := tg.Coordinator().Ledger().Account(t.Context(), "default")
	if err != nil {
		t.Fatal(err)
	}
	if lost := drainFunds - a.Balance; lost < 0 || uint64(lost) > uint64(len(vs))*bound {
		t.Fatalf("account lost %d bytes; bound %d", lost, uint64(len(vs))*bound)
	}
}

// Budgets follow the site's size between MinBudget and Budget; a site of
// unknown size gets Budget.
func TestBudgetFor(t *testing.T) {
	pc := PaymentsConfig{}.normalize()
	for _, c := range []struct {
		size            int64
		budget, nodeCap uint64
	}{
		{0, 64 << 20, 16 << 20},
		{1, 4 << 20, 4 << 20},
		{3 << 20, 6 << 20, 6 << 20},
		{10 << 20, 20 << 20, 16 << 20},
		{1 << 30, 64 << 20, 16 << 20},
	} {
		if b, nc := pc.budgetFor(Site{Size: c.size}); b != c.budget || nc != c.nodeCap {
			t.Errorf("size %d: budget %d cap %d, want %d %d", c.size, b, nc, c.budget, c.nodeCap)
		}
	}
}
