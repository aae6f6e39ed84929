package payment_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
)

func TestVoucherRoundTrip(t *testing.T) {
	f := newFixture(t, 10<<20)
	b, err := f.voucher.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 149+len("acme")+len("blog")+len(testRoot)+6*payment.NodeTagSize {
		t.Fatalf("voucher is %d bytes", len(b))
	}
	v, err := payment.ParseVoucher(b)
	if err != nil {
		t.Fatal(err)
	}
	if !(v.Expires.Equal(f.voucher.Expires) && v.Account == f.voucher.Account && v.Site == f.voucher.Site && v.Root == f.voucher.Root &&
		v.NodeCap == f.voucher.NodeCap && slices.Equal(v.Nodes, f.voucher.Nodes)) {
		t.Fatalf("round trip: %+v != %+v", v, f.voucher)
	}
	if v.ID() != f.voucher.ID() {
		t.Fatal("id changed by round trip")
	}
	if err := v.Verify(f.keys, t0); err != nil {
		t.Fatal(err)
	}
	again, _ := v.MarshalBinary()
	if !bytes.Equal(again, b) {
		t.Fatal("encoding not canonical")
	}
}

// TestVoucherSite: the site is optional, signed, and bounded.
func TestVoucherSite(t *testing.T) {
	f := newFixture(t, 10<<20)
	gw := key("gateway")
	for _, site := range []string{"", "a", strings.Repeat("s", payment.MaxSiteLen)} {
		v := f.voucher
		v.Site = site
		if err := v.Sign(gw); err != nil {
			t.Fatalf("site %q: %v", site, err)
		}
		b, err := v.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if site == strings.Repeat("s", payment.MaxSiteLen) && len(b) != 149+len("acme")+payment.MaxSiteLen+len(testRoot)+6*payment.NodeTagSize {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := payment.ParseVoucher(b)
		if err != nil || got.Site != site {
			t.Fatalf("site %q: got %q, %v", site, got.Site, err)
		}
		if err := got.VerifySignature(f.keys); err != nil {
			t.Fatal(err)
		}
		// Another site under the same signature is a forgery.
		got.Site = "x"
		if site != "" {
			got.Site = site[:len(site)-1] + "z"
		}
		if err := got.VerifySignature(f.keys); !errors.Is(err, payment.ErrBadSignature) {
			t.Fatalf("site changed: %v", err)
		}
	}
	long := f.voucher
	long.Site = strings.Repeat("s", payment.MaxSiteLen+1)
	if err := long.Sign(gw); !errors.Is(err, payment.ErrMalformed) {
		t.Fatalf("64-byte site: %v", err)
	}
	max := f.voucher
	max.Account = strings.Repeat("a", payment.MaxAccountLen)
	max.Site = strings.Repeat("s", payment.MaxSiteLen)
	max.Root = strings.Repeat("R", payment.MaxRootLen)
	for len(max.Nodes) < payment.MaxVoucherNodes {
		max.Nodes = append(max.Nodes, payment.NodeTag{byte(len(max.Nodes))})
	}
	if err := max.Sign(gw); err != nil {
		t.Fatal(err)
	}
	if b, _ := max.MarshalBinary(); len(b) != payment.MaxVoucherBytes {
		t.Fatalf("largest voucher %d bytes, MaxVoucherBytes %d", len(b), payment.MaxVoucherBytes)
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	f := newFixture(t, 10<<20)
	n := nodeKey("node-a")
	r := f.receipt(t, n, 1000)
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != payment.ReceiptBytes || payment.ReceiptBytes != 177 {
		t.Fatalf("receipt is %d bytes", len(b))
	}
	got, err := payment.ParseReceipt(b)
	if err != nil || got != r {
		t.Fatalf("round trip: %v", err)
	}
	if err := got.Verify(&f.voucher, f.voucher.ID(), n); err != nil {
		t.Fatal(err)
	}
}

func TestMalformed(t *testing.T) {
	f := newFixture(t, 10<<20)
	vb, _ := f.voucher.MarshalBinary()
	r := f.receipt(t, nodeKey("n"), 5)
	rb, _ := r.MarshalBinary()
	mut := func(b []byte, i int, c byte) []byte { b = bytes.Clone(b); b[i] = c; return b }
	// Offsets in the fixture's voucher: account "acme", site "blog".
	rootAt := 19
	budgetAt := rootAt + 1 + len(testRoot) + 32
	capAt, countAt := budgetAt+8, budgetAt+8+8+8+16
	word := func(b []byte, at int, w byte) []byte {
		b = bytes.Clone(b)
		copy(b[at:at+8], bytes.Repeat([]byte{w}, 8))
		return b
	}
	vouchers := map[string][]byte{
		"empty":          nil,
		"short":          vb[:50],
		"trailing":       append(bytes.Clone(vb), 0),
		"version 3":      mut(vb, 0, 3),
		"account length": mut(vb, 9, 5),
		"account upper":  mut(vb, 10, 'A'),
		"site length":    mut(vb, 14, 9),
		"site upper":     mut(vb, 15, 'B'),
		"site dot":       mut(vb, 15, '.'),
		"root length":    mut(vb, rootAt, 200),
		"root dash":      mut(vb, rootAt+1, '-'),
		"zero budget":    word(vb, budgetAt, 0),
		"zero node cap":  word(vb, capAt, 0),
		"cap > budget":   word(vb, capAt, 0xff),
		"no nodes":       mut(vb, countAt, 0),
		"7 nodes":        mut(vb, countAt, 7),
		"17 nodes":       mut(vb, countAt, 17),
		"5 nodes":        mut(vb, countAt, 5),
		"huge":           make([]byte, 1<<20),
	}
	for name, b := range vouchers {
		t.Run("voucher/"+name, func(t *testing.T) {
			if _, err := payment.ParseVoucher(b); !errors.Is(err, payment.ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
	receipts := map[string][]byte{
		"empty":     nil,
		"short":     rb[:176],
		"trailing":  append(bytes.Clone(rb), 0),
		"version 0": mut(rb, 0, 0),
		"seq 0":     append(append(bytes.Clone(rb[:105]), 0, 0, 0, 0, 0, 0, 0, 0), rb[113:]...),
	}
	for name, b := range receipts {
		t.Run("receipt/"+name, func(t *testing.T) {
			if _, err := payment.ParseReceipt(b); !errors.Is(err, payment.ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestNodeIDMatchesNodeRecord(t *testing.T) {
	n := nodeKey("x")
	id := n.String()
	if want := noderecord.NodeIDFromKey(ed25519.PublicKey(n[:])); id != want {
		t.Fatalf("node id %s, noderecord says %s", id, want)
	}
	back, err := payment.ParseNodeID(id)
	if err != nil || back != n {
		t.Fatalf("%s: %v", id, err)
	}
	if _, err := payment.ParseNodeID("n" + id[1:52]); err == nil {
		t.Fatal("short id accepted")
	}
}

// A key has one id and one session key string: another spelling of the
// same key (upper case, or the last character's unused bits set) is
// refused, not read as the key under a second name.
func TestKeyStringsHaveOneForm(t *testing.T) {
	n := nodeKey("x")
	var sk payment.SessionKey
	copy(sk[:], n[:])
	for _, tc := range []struct {
		canon string
		parse func(string) error
	}{
		{n.String(), func(s string) error { _, err := payment.ParseNodeID(s); return err }},
		{sk.String(), func(s string) error { _, err := payment.ParseSessionKey(s); return err }},
	} {
		if err := tc.parse(tc.canon); err != nil {
			t.Fatalf("%s: %v", tc.canon, err)
		}
		const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
		last := strings.IndexByte(alphabet, tc.canon[52])
		others := []string{
			tc.canon[:1] + strings.ToUpper(tc.canon[1:]),
			tc.canon[:20] + strings.ToUpper(tc.canon[20:21]) + tc.canon[21:],
			tc.canon[:52] + alphabet[last^1:last^1+1],
			tc.canon[:52] + alphabet[last^8:last^8+1],
		}
		for _, s := range others {
			if s == tc.canon {
				continue
			}
			if err := tc.parse(s); !errors.Is(err, payment.ErrMalformed) {
				t.Errorf("%s (another spelling of %s): %v, want ErrMalformed", s, tc.canon, err)
			}
		}
	}
}

func TestCodes(t *testing.T) {
	for _, e := range []error{payment.ErrMalformed, payment.ErrBadSignature, payment.ErrUnknownGateway, payment.ErrExpired,
		payment.ErrWrongNode, payment.ErrWrongSession, payment.ErrNotMonotonic, payment.ErrOverBudget, payment.ErrAccountFrozen} {
		wrapped := &payment.Error{Op: "receipt", Err: e}
		c := payment.Code(wrapped)
		if c == "" || payment.CodeError(c) != e {
			t.Fatalf("%v: code %q", e, c)
		}
	}
	if payment.Code(errors.New("other")) != "" || payment.CodeError("nope") != nil {
		t.Fatal("unknown error has a code")
	}
}

func TestSignerOneBlockBehind(t *testing.T) {
	f := newFixture(t, 100<<20)
	n := nodeKey("node-a")
	var verified uint64
	var last payment.Receipt
	for i := 0; i < 20; i++ {
		size := uint64(payment.BlockSize)
		if i%3 == 1 {
			size = 1000 // a short tail block
		}
		verified += size
		r, signed, err := f.signer.Verified(n, size)
		if err != nil {
			t.Fatal(err)
		}
		if signed {
			if r.Bytes != verified || r.Seq != last.Seq+1 {
				t.Fatalf("receipt %d covers %d of %d", r.Seq, r.Bytes, verified)
			}
			last = r
		}
		if verified-last.Bytes >= payment.BlockSize {
			t.Fatalf("%d bytes verified and not receipted", verified-last.Bytes)
		}
	}
	if r, ok, _ := f.signer.Flush(n); ok && r.Bytes != verified {
		t.Fatalf("flush covers %d of %d", r.Bytes, verified)
	}
	if _, ok, _ := f.signer.Flush(n); ok {
		t.Fatal("flush with nothing new signed a receipt")
	}
}

// SetSignEvery changes how many bytes of one node wait for a receipt,
// and only that node's; a node the voucher does not name gets nothing.
func TestSignerSetSignEvery(t *testing.T) {
	f := newFixture(t, 100<<20)
	a, b := nodeKey("node-a"), nodeKey("node-b")
	f.signer.SetSignEvery(a, 2*payment.BlockSize)
	f.signer.SetSignEvery(nodeKey("stranger"), 1) // ignored
	signs := func(n payment.NodeKey) []uint64 {
		var at []uint64
		for i := 1; i <= 8; i++ {
			r, signed, err := f.signer.Verified(n, payment.BlockSize)
			if err != nil {
				t.Fatal(err)
			}
			if signed {
				at = append(at, r.Bytes/payment.BlockSize)
			}
		}
		return at
	}
	if got := signs(a); !slices.Equal(got, []uint64{2, 4, 6, 8}) {
		t.Fatalf("node a receipted after blocks %v, want every second", got)
	}
	if got := signs(b); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7, 8}) {
		t.Fatalf("node b receipted after blocks %v, want every one", got)
	}
	if _, _, err := f.signer.Verified(nodeKey("stranger"), 1); err == nil {
		t.Fatal("a node the voucher does not name was paid")
	}
	f.signer.SetSignEvery(a, 0)
	if got := signs(a); len(got) != 8 {
		t.Fatalf("node a receipted %d of 8 blocks after the reset, want every one", len(got))
	}
}

func TestSignerRefuses(t *testing.T) {
	f := newFixture(t, 3000)
	a, b := nodeKey("a"), nodeKey("b")
	if _, _, err := f.signer.Verified(a, 2000); err != nil {
		t.Fatal(err)
	}
	// The budget is per session, over all nodes.
	if _, _, err := f.signer.Verified(b, 1001); !errors.Is(err, payment.ErrOverBudget) {
		t.Fatalf("over budget: %v", err)
	}
	if _, _, err := f.signer.Verified(b, 1000); err != nil {
		t.Fatal(err)
	}
	other, _ := payment.NewSigner(payment.SignerConfig{})
	if err := other.SetVoucher(f.voucher); !errors.Is(err, payment.ErrWrongSession) {
		t.Fatalf("voucher for another session key: %v", err)
	}
	if _, _, err := other.Verified(a, 1); !errors.Is(err, payment.ErrWrongSession) {
		t.Fatalf("no voucher: %v", err)
	}
	now := t0
	late, _ := payment.NewSigner(payment.SignerConfig{Now: func() time.Time { return now }})
	v := f.voucher
	v.Session = late.SessionKey()
	_ = v.Sign(f.gw)
	_ = late.SetVoucher(v)
	now = v.Expires
	if _, _, err := late.Verified(a, 1); !errors.Is(err, payment.ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

// The attacks of issue 6 that apply at this layer.
func TestAttacks(t *testing.T) {
	f := newFixture(t, 1<<20)
	a, b := nodeKey("node-a"), nodeKey("node-b")

	t.Run("forged voucher", func(t *testing.T) {
		evil := key("not the gateway")
		v := f.voucher
		v.Budget = 1 << 40
		_ = v.Sign(evil) // signed by an unknown key
		if _, err := payment.NewTracker(v, f.keys, a, t0); !errors.Is(err, payment.ErrUnknownGateway) {
			t.Fatalf("unknown key: %v", err)
		}
		v = f.voucher
		v.Budget = 1 << 40 // raised after signing
		if _, err := payment.NewTracker(v, f.keys, a, t0); !errors.Is(err, payment.ErrBadSignature) {
			t.Fatalf("altered: %v", err)
		}
		// A voucher signed by another key under the gateway's key id.
		v = f.voucher
		_ = v.Sign(evil)
		v.KeyID = f.voucher.KeyID
		if _, err := payment.NewTracker(v, f.keys, a, t0); !errors.Is(err, payment.ErrBadSignature) {
			t.Fatalf("key id swapped: %v", err)
		}
	})

	t.Run("forged receipt", func(t *testing.T) {
		tr := f.tracker(t, a)
		r := f.receipt(t, a, 1000)
		r.Bytes = 2000 // altered after signing
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrBadSignature) {
			t.Fatalf("altered: %v", err)
		}
		// Signed by a key that is not the voucher's session key.
		r = payment.Receipt{Voucher: f.voucher.ID(), Node: a, Bytes: 5000, Seq: 9}
		_ = r.Sign(key("thief"))
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrWrongSession) {
			t.Fatalf("other session key: %v", err)
		}
		r.Session = f.voucher.Session // claims the session, signature does not match
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrBadSignature) {
			t.Fatalf("claimed session: %v", err)
		}
	})

	t.Run("receipt for another node", func(t *testing.T) {
		tr := f.tracker(t, a)
		r := f.receipt(t, b, 1000)
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrWrongNode) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("receipt for another session", func(t *testing.T) {
		g := newFixtureSeed(t, 1<<20, 1<<20, 9)
		tr := f.tracker(t, a)
		r := g.receipt(t, a, 1000)
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrWrongSession) {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("counter going backwards", func(t *testing.T) {
		g := newFixtureSeed(t, 1<<20, 1<<20, 10)
		tr := g.tracker(t, a)
		r1 := g.receipt(t, a, 1000)
		r2 := g.receipt(t, a, 1000)
		if err := tr.Accept(&r2, t0); err != nil {
			t.Fatal(err)
		}
		if err := tr.Accept(&r1, t0); !errors.Is(err, payment.ErrNotMonotonic) {
			t.Fatalf("older receipt: %v", err)
		}
		forged := r1
		forged.Signature[0] ^= 1
		if tr.Overtaken(&forged) {
			t.Fatal("an older receipt with a bad signature is reported overtaken")
		}
		if !tr.Overtaken(&r1) {
			t.Fatal("an older valid receipt is not reported overtaken")
		}
		if err := tr.Accept(&r2, t0); err != nil {
			t.Fatalf("same receipt again: %v", err)
		}
		// A higher sequence with fewer bytes, signed by the real session
		// key (a buggy or hostile worker).
		bad := payment.Receipt{Voucher: g.voucher.ID(), Node: a, Bytes: 10, Seq: r2.Seq + 1}
		_ = bad.Sign(g.sessionPriv)
		if err := tr.Accept(&bad, t0); !errors.Is(err, payment.ErrNotMonotonic) {
			t.Fatalf("bytes backwards: %v", err)
		}
		if tr.Overtaken(&bad) {
			t.Fatal("a newer receipt with fewer bytes is reported overtaken")
		}
		if l, _ := tr.Latest(); l != r2 {
			t.Fatal("latest changed by a refused receipt")
		}
	})

	t.Run("expired voucher", func(t *testing.T) {
		if _, err := payment.NewTracker(f.voucher, f.keys, a, f.voucher.Expires); !errors.Is(err, payment.ErrExpired) {
			t.Fatalf("tracker: %v", err)
		}
		g := newFixtureSeed(t, 1<<20, 1<<20, 11)
		tr := g.tracker(t, a)
		r := g.receipt(t, a, 1000)
		if err := tr.Accept(&r, g.voucher.Expires.Add(time.Second)); !errors.Is(err, payment.ErrExpired) {
			t.Fatalf("receipt after expiry: %v", err)
		}
	})

	t.Run("spending beyond budget", func(t *testing.T) {
		g := newFixtureSeed(t, 1000, 1000, 12)
		tr := g.tracker(t, a)
		bad := payment.Receipt{Voucher: g.voucher.ID(), Node: a, Bytes: 1001, Seq: 1}
		_ = bad.Sign(g.sessionPriv)
		if err := tr.Accept(&bad, t0); !errors.Is(err, payment.ErrOverBudget) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestKeyIDOf(t *testing.T) {
	p := key("gateway").Public().(ed25519.PublicKey)
	if payment.KeyIDOf(p) == payment.KeyIDOf(key("other").Public().(ed25519.PublicKey)) {
		t.Fatal("key ids collide")
	}
}

// A voucher of version 1 (no nodes, no per-node cap) is refused with its
// own error, so a node or the ledger says why and the worker gets a new one.
func TestVoucherV1Refused(t *testing.T) {
	f := newFixture(t, 10<<20)
	vb, _ := f.voucher.MarshalBinary()
	v1 := bytes.Clone(vb)
	v1[0] = 1
	_, err := payment.ParseVoucher(v1)
	if !errors.Is(err, payment.ErrOldVoucher) || payment.Code(err) != "old_voucher" {
		t.Fatalf("version 1: %v (code %q)", err, payment.Code(err))
	}
	old := f.voucher
	old.Version = 1
	if err := old.Sign(f.gw); !errors.Is(err, payment.ErrOldVoucher) {
		t.Fatalf("signing version 1: %v", err)
	}
}

// A voucher pays only the nodes it names, each up to its cap: the node
// refuses to serve under a voucher not naming it, the worker signs for
// none other, and a receipt beyond the cap is refused.
func TestVoucherNodesAndCap(t *testing.T) {
	f := newFixtureCap(t, 10<<20, 3<<20)
	a, stranger := nodeKey("node-a"), nodeKey("stranger")
	if !f.voucher.Names(a) || f.voucher.Names(stranger) {
		t.Fatal("Names")
	}
	if _, err := payment.NewTracker(f.voucher, f.keys, stranger, t0); !errors.Is(err, payment.ErrWrongNode) {
		t.Fatalf("tracker for a node the voucher does not name: %v", err)
	}
	if _, _, err := f.signer.Verified(stranger, 1000); !errors.Is(err, payment.ErrWrongNode) {
		t.Fatalf("signing for an unnamed node: %v", err)
	}
	// A receipt to an unnamed node, signed with the session key.
	r := payment.Receipt{Voucher: f.voucher.ID(), Node: stranger, Bytes: 1000, Seq: 1}
	if err := r.Sign(f.sessionPriv); err != nil {
		t.Fatal(err)
	}
	if err := r.Verify(&f.voucher, f.voucher.ID(), stranger); !errors.Is(err, payment.ErrWrongNode) {
		t.Fatalf("receipt for an unnamed node: %v", err)
	}
	// Up to the cap per node, then refused; another node has its own cap.
	tr := f.tracker(t, a)
	got := f.receipt(t, a, 3<<20)
	if err := tr.Accept(&got, t0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.signer.Verified(a, 1); !errors.Is(err, payment.ErrOverBudget) {
		t.Fatalf("signing beyond the node cap: %v", err)
	}
	over := payment.Receipt{Voucher: f.voucher.ID(), Node: a, Bytes: 3<<20 + 1, Seq: got.Seq + 1}
	if err := over.Sign(f.sessionPriv); err != nil {
		t.Fatal(err)
	}
	if err := tr.Accept(&over, t0); !errors.Is(err, payment.ErrOverBudget) {
		t.Fatalf("receipt beyond the node cap: %v", err)
	}
	if r := f.receipt(t, nodeKey("node-b"), 3<<20); r.Bytes != 3<<20 {
		t.Fatalf("second node: %+v", r)
	}
}

// A receipt is ignored as overtaken once: a copy of one the tracker
// already accepted or ignored is a replay, refused, so a client cannot
// make a node check the same signature over and over for nothing (a
// worker sends each receipt once, on one stream). Receipts further behind
// the latest than the tracker remembers (OvertakenWindow) are ignored
// unchecked: they pay nothing, and checking them would let each replay
// cost a signature verification again.
func TestOvertakenReplay(t *testing.T) {
	a := nodeKey("node-a")
	g := newFixtureSeed(t, 1<<30, 1<<30, 13)
	tr := g.tracker(t, a)
	var rs []payment.Receipt // rs[i] has Seq i+1
	for range payment.OvertakenWindow + 8 {
		rs = append(rs, g.receipt(t, a, 1000))
	}
	accept := func(r payment.Receipt) {
		t.Helper()
		if err := tr.Accept(&r, t0); err != nil {
			t.Fatalf("seq %d: %v", r.Seq, err)
		}
	}
	overtaken := func(r payment.Receipt) bool {
		t.Helper()
		if err := tr.Accept(&r, t0); !errors.Is(err, payment.ErrNotMonotonic) {
			t.Fatalf("seq %d behind the latest: %v", r.Seq, err)
		}
		return tr.Overtaken(&r)
	}
	accept(rs[0])
	accept(rs[2]) // seq 2 still in flight on another stream
	if !overtaken(rs[1]) {
		t.Fatal("seq 2, arriving after seq 3, is not ignored as overtaken")
	}
	if overtaken(rs[1]) {
		t.Fatal("seq 2 ignored as overtaken twice: a replay")
	}
	if overtaken(rs[0]) {
		t.Fatal("seq 1, accepted before, ignored as overtaken: a replay")
	}
	accept(rs[5])
	if overtaken(rs[1]) || overtaken(rs[2]) {
		t.Fatal("a replay ignored after the latest moved on")
	}
	other := newFixtureSeed(t, 1<<30, 1<<30, 14).receipt(t, a, 10)
	if tr.Overtaken(&other) {
		t.Fatal("an older receipt of another session is ignored as overtaken")
	}
	forged := rs[3]
	forged.Signature[0] ^= 1
	if overtaken(forged) {
		t.Fatal("an older receipt with a bad signature is ignored as overtaken")
	}
	if !overtaken(rs[3]) || !overtaken(rs[4]) {
		t.Fatal("seq 4 and 5, arriving after seq 6, are not ignored as overtaken")
	}

	// Beyond the window: ignored without a signature check, when it
	// names this session and node.
	last := rs[len(rs)-1]
	accept(last)
	far := rs[int(last.Seq)-payment.OvertakenWindow-2]
	far.Signature[0] ^= 1
	if !overtaken(far) || !overtaken(far) {
		t.Fatalf("seq %d, %d behind the latest: refused; want ignored", far.Seq, last.Seq-far.Seq)
	}
	if tr.Overtaken(&other) {
		t.Fatal("a receipt of another session far behind the latest is ignored as overtaken")
	}
	if l, _ := tr.Latest(); l != last {
		t.Fatal("latest changed by an overtaken receipt")
	}
}
