package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
)

const blk = payment.BlockSize

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func key(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

// testNodes are the tags of the nodes the tests' vouchers name: node-a to
// node-h, a and b.
func testNodes() []payment.NodeTag {
	var out []payment.NodeTag
	for _, s := range []string{"node-a", "node-b", "node-c", "node-d", "node-e", "node-f", "node-g", "node-h", "a", "b"} {
		out = append(out, payment.TagOf(nodeKey(s)))
	}
	return out
}

func nodeKey(seed string) payment.NodeKey {
	var k payment.NodeKey
	copy(k[:], key(seed).Public().(ed25519.PublicKey))
	return k
}

var gw = key("gateway")

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time)     { c.mu.Lock(); c.now = t; c.mu.Unlock() }
func newClock() *clock               { return &clock{now: t0} }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

type env struct {
	bus   *events.Bus
	l     *ledger.Ledger
	clock *clock
}

func newEnv(t testing.TB, cfg ledger.Config) *env {
	t.Helper()
	bus, err := events.Open(ctxT(t), events.Config{StoreDir: t.TempDir(), Name: "coord-test", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bus.Close() })
	c := newClock()
	cfg.Bus, cfg.Keys, cfg.Now, cfg.Logger = bus, payment.NewKeySet(gw.Public().(ed25519.PublicKey)), c.Now, quiet()
	l, err := ledger.New(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return &env{bus: bus, l: l, clock: c}
}

// account creates a funded account.
func (e *env) account(t testing.TB, name string, balance uint64, freezeBelow int64) {
	t.Helper()
	if _, err := e.l.CreateAccount(ctxT(t), name, freezeBelow); err != nil {
		t.Fatal(err)
	}
	if _, err := e.l.TopUp(ctxT(t), name, balance); err != nil {
		t.Fatal(err)
	}
}

// session is a worker session with its voucher.
type session struct {
	signer  *payment.Signer
	voucher payment.Voucher
	enc     []byte
	priv    ed25519.PrivateKey
}

func newSession(t testing.TB, account string, id string, budget uint64) *session {
	t.Helper()
	return newSiteSession(t, account, "", id, budget)
}

// newSiteSession is a session whose voucher names site.
func newSiteSession(t testing.TB, account, site, id string, budget uint64) *session {
	t.Helper()
	return newVoucherSession(t, account, site, id, budget, t0.Add(time.Hour))
}

// newVoucherSession is a session whose voucher names site and expires at
// expires.
func newVoucherSession(t testing.TB, account, site, id string, budget uint64, expires time.Time) *session {
	t.Helper()
	seed := sha256.Sum256([]byte(account + "/" + id))
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(seed[:]), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: account, Site: site, Session: s.SessionKey(), Budget: budget, NodeCap: budget,
		Nodes: testNodes(), Expires: expires}
	if err := v.Sign(gw); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVoucher(v); err != nil {
		t.Fatal(err)
	}
	enc, _ := v.MarshalBinary()
	return &session{signer: s, voucher: v, enc: enc, priv: ed25519.NewKeyFromSeed(seed[:])}
}

// deliver records n blocks from node and returns the batch item of the
// latest receipt.
func (s *session) deliver(t testing.TB, node payment.NodeKey, blocks int) nodeproto.BatchItem {
	t.Helper()
	var r payment.Receipt
	for i := 0; i < blocks; i++ {
		var err error
		if r, _, err = s.signer.Verified(node, blk); err != nil {
			t.Fatal(err)
		}
	}
	rb, _ := r.MarshalBinary()
	return nodeproto.BatchItem{Voucher: s.enc, Receipt: rb}
}

// item signs an arbitrary receipt with the session key.
func (s *session) item(t testing.TB, node payment.NodeKey, bytes, seq uint64) nodeproto.BatchItem {
	t.Helper()
	r := payment.Receipt{Voucher: s.voucher.ID(), Node: node, Bytes: bytes, Seq: seq}
	if err := r.Sign(s.priv); err != nil {
		t.Fatal(err)
	}
	rb, _ := r.MarshalBinary()
	return nodeproto.BatchItem{Voucher: s.enc, Receipt: rb}
}

// collect subscribes to event types and returns a function that waits for
// n events and returns them.
func collect(t testing.TB, bus *events.Bus, types ...events.Type) func(n int) []events.Event {
	t.Helper()
	ch := make(chan events.Event, 1024)
	sub, err := bus.Subscribe(ctxT(t), "test-"+strconv.Itoa(len(types)), func(_ context.Context, ev events.Event) error {
		ch <- ev
		return nil
	}, types...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Stop)
	return func(n int) []events.Event {
		var out []events.Event
		timeout := time.After(testutil.Scale(10 * time.Second))
		for len(out) < n {
			select {
			case ev := <-ch:
				out = append(out, ev)
			case <-timeout:
				t.Fatalf("got %d of %d events", len(out), n)
			}
		}
		return out
	}
}
