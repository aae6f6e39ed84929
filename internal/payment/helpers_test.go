package payment_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func key(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

func nodeKey(seed string) payment.NodeKey {
	var k payment.NodeKey
	copy(k[:], key(seed).Public().(ed25519.PublicKey))
	return k
}

// testRoot is the content root the fixture's voucher is for.
const testRoot = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"

// fixtureNodes are the tags of the nodes the fixture's voucher names: the
// node keys the tests use, "stranger" excepted.
func fixtureNodes() []payment.NodeTag {
	var out []payment.NodeTag
	for _, s := range []string{"node-a", "node-b", "n", "x", "a", "b"} {
		out = append(out, payment.TagOf(nodeKey(s)))
	}
	return out
}

// fixture is one gateway, one session and its voucher.
type fixture struct {
	gw          ed25519.PrivateKey
	sessionPriv ed25519.PrivateKey // the signer's key, for crafting hostile receipts
	keys        payment.KeySet
	signer      *payment.Signer
	voucher     payment.Voucher
}

func newFixture(t testing.TB, budget uint64) *fixture { return newFixtureSeed(t, budget, budget, 7) }

// newFixtureCap is newFixture with a per-node cap below the budget.
func newFixtureCap(t testing.TB, budget, nodeCap uint64) *fixture {
	return newFixtureSeed(t, budget, nodeCap, 7)
}

// newFixtureSeed makes a session whose key is derived from seed.
func newFixtureSeed(t testing.TB, budget, nodeCap uint64, seed byte) *fixture {
	t.Helper()
	gw := key("gateway")
	s, err := payment.NewSigner(payment.SignerConfig{
		Rand: bytes.NewReader(bytes.Repeat([]byte{seed}, 32)),
		Now:  func() time.Time { return t0 },
	})
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: "acme", Site: "blog", Root: testRoot, Session: s.SessionKey(), Budget: budget, NodeCap: nodeCap,
		Expires: t0.Add(time.Hour), Nonce: [16]byte{1, 2, 3}, Nodes: fixtureNodes()}
	if err := v.Sign(gw); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVoucher(v); err != nil {
		t.Fatal(err)
	}
	sp := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32))
	return &fixture{gw: gw, sessionPriv: sp, keys: payment.NewKeySet(gw.Public().(ed25519.PublicKey)), signer: s, voucher: v}
}

func (f *fixture) tracker(t testing.TB, node payment.NodeKey) *payment.Tracker {
	t.Helper()
	tr, err := payment.NewTracker(f.voucher, f.keys, node, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// receipt signs one block of n bytes from node.
func (f *fixture) receipt(t testing.TB, node payment.NodeKey, n uint64) payment.Receipt {
	t.Helper()
	r, ok, err := f.signer.Verified(node, n)
	if err != nil {
		t.Fatal(err)
	}
	if ok {
		return r
	}
	r, ok, err = f.signer.Flush(node)
	if err != nil || !ok {
		t.Fatalf("flush: %v %v", ok, err)
	}
	return r
}
