package wasmclient

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/wire"
)

// testPayNode is the node the vouchers issue makes name.
var testPayNode = payment.NodeKey{7, 7, 7}

// issue plays the gateway: a voucher for key, base64.
func issue(t *testing.T, gw ed25519.PrivateKey, key string, expires time.Time) string {
	t.Helper()
	return capVoucher(t, gw, key, expires, 1<<30, 1<<30)
}

func TestPayerVoucherLifecycle(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	_, gw, _ := ed25519.GenerateKey(nil)
	nk := testPayNode

	if p.stream(nk.String()) != nil {
		t.Fatal("a stream payment without a voucher")
	}
	k1 := p.sessionKey()
	if k1 == "" || p.sessionKey() != k1 {
		t.Fatalf("session key %q then %q: want one stable key until a voucher comes", k1, p.sessionKey())
	}
	p.update(&Session{Account: "acme", Voucher: issue(t, gw, k1, now.Add(time.Hour))})
	if k := p.sessionKey(); k != "" {
		t.Fatalf("asks for a voucher (%q) while holding a fresh one", k)
	}
	// A voucher for another key is not installed.
	p2 := &payer{now: p.now}
	p2.sessionKey()
	p2.update(&Session{Voucher: issue(t, gw, k1, now.Add(time.Hour))})
	if p2.stream(nk.String()) != nil {
		t.Fatal("installed a voucher made out to another session key")
	}

	sp := p.stream(nk.String())
	if sp == nil {
		t.Fatal("no stream payment with a voucher")
	}
	var sent [][]byte
	sp.setSender(func(b []byte) error { sent = append(sent, append([]byte(nil), b...)); return nil })
	sp.Verified(100 << 10)
	sp.Verified(200 << 10) // crosses a block's worth: one receipt
	sp.Verified(10)
	sp.Flush() // the tail
	if len(sent) != 2 {
		t.Fatalf("%d receipts sent, want 2", len(sent))
	}
	raw, _ := base64.StdEncoding.DecodeString(sp.Voucher)
	v, _ := payment.ParseVoucher(raw)
	tr, err := payment.NewTracker(v, payment.NewKeySet(gw.Public().(ed25519.PublicKey)), nk, now)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range sent {
		if _, err := tr.AcceptBinary(b, now); err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
	}
	if got := tr.Receipted(); got != 300<<10+10 {
		t.Fatalf("receipted %d", got)
	}

	// Near its expiry the next session load asks for a new voucher with a
	// new key.
	now = now.Add(58 * time.Minute)
	if k := p.sessionKey(); k == "" || k == k1 {
		t.Fatalf("near expiry: key %q", k)
	}

	// Frozen: from the session or from a node; a voucher lifts it.
	p.update(&Session{PaymentError: "account_frozen"})
	if !p.isFrozen() {
		t.Fatal("not frozen after paymentError")
	}
	k2 := p.sessionKey()
	if k2 == "" {
		t.Fatal("a frozen payer stops asking for a voucher")
	}
	p.update(&Session{Voucher: issue(t, gw, k2, now.Add(time.Hour))})
	if p.isFrozen() {
		t.Fatal("still frozen with a new voucher")
	}
	p.onRefused("account_frozen")
	if !p.isFrozen() {
		t.Fatal("a node's account_frozen does not freeze")
	}
	p.takeRenew()
	p.onRefused("bad_signature")
	if p.stream(nk.String()) != nil || p.sessionKey() == "" {
		t.Fatal("a refused voucher is still used")
	}
	if !p.takeRenew() || p.takeRenew() {
		t.Fatal("a refused voucher does not make the next request reload the session, once")
	}
}

// Streams to one node that end together send one receipt: the last to end
// signs for the bytes of all of them (receipts are cumulative per node),
// so the worker's thread does not sign once per small file.
func TestStreamEndReceiptsCoalesced(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), now.Add(time.Hour))})
	raw, _ := base64.StdEncoding.DecodeString(p.enc)
	v, _ := payment.ParseVoucher(raw)
	tr, err := payment.NewTracker(v, payment.NewKeySet(gw.Public().(ed25519.PublicKey)), testPayNode, now)
	if err != nil {
		t.Fatal(err)
	}
	var sent [][]byte
	send := func(b []byte) error { sent = append(sent, append([]byte(nil), b...)); return nil }

	a, b, c := p.stream(testPayNode.String()), p.stream(testPayNode.String()), p.stream(testPayNode.String())
	for _, sp := range []*StreamPayment{a, b, c} {
		sp.setSender(send)
	}
	a.Verified(3000)
	b.Verified(5000)
	a.Flush() // b and c still open: b's or c's end pays for a's bytes
	if len(sent) != 0 {
		t.Fatalf("%d receipts at the first end of three streams, want 0", len(sent))
	}
	c.Verified(7000)
	c.Flush()
	b.Flush() // the last to end
	if len(sent) != 1 {
		t.Fatalf("%d receipts after all three ended, want 1", len(sent))
	}
	if _, err := tr.AcceptBinary(sent[0], now); err != nil || tr.Receipted() != 15000 {
		t.Fatalf("receipted %d (%v), want the three streams' 15000 bytes", tr.Receipted(), err)
	}

	// A stream that never ends (its payment never released) does not hold
	// the others' bytes back beyond a block: Verified still signs at
	// every block's worth, for all streams of the node.
	stuck, d := p.stream(testPayNode.String()), p.stream(testPayNode.String())
	stuck.setSender(send)
	d.setSender(send)
	d.Verified(100)
	d.Flush()
	if len(sent) != 1 {
		t.Fatalf("%d receipts, want still 1 while a stream is open", len(sent))
	}
	d2 := p.stream(testPayNode.String())
	d2.setSender(send)
	d2.Verified(payment.BlockSize)
	if len(sent) != 2 {
		t.Fatalf("%d receipts after a block's worth, want 2", len(sent))
	}
	if _, err := tr.AcceptBinary(sent[1], now); err != nil || tr.Receipted() != 15000+100+payment.BlockSize {
		t.Fatalf("receipted %d (%v)", tr.Receipted(), err)
	}

	// A stream that failed before its body (released without a flush)
	// does not count as open.
	e, f := p.stream(testPayNode.String()), p.stream(testPayNode.String())
	e.setSender(send)
	f.setSender(send)
	stuck.release()
	d2.release()
	e.release()
	f.Verified(10)
	f.Flush()
	if len(sent) != 3 {
		t.Fatalf("%d receipts, want 3: the last open stream's end signs", len(sent))
	}
}

// endless is a body that never ends: a node still sending.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

// nopStream is a Stream whose writes go nowhere.
type nopStream struct{ endless }

func (nopStream) Write(p []byte) (int, error) { return len(p), nil }
func (nopStream) Close() error                { return nil }

// Once the signer refuses to pay (the voucher's per-node cap is spent),
// the stream's body fails at once with ErrPaymentStopped: reading on
// would only wait for the node to give up on receipts that will not come.
func TestPaidBodyStopsWhenPaymentStops(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Account: "acme", Voucher: capVoucher(t, gw, p.sessionKey(), now.Add(time.Hour), 1<<30, 512<<10)})
	sp := p.stream(testPayNode.String())
	if sp == nil {
		t.Fatal("no stream payment with a voucher")
	}
	var last payment.Receipt
	sp.setSender(func(b []byte) error { return last.UnmarshalBinary(b) })
	b := &framedBody{Reader: endless{}, s: nopStream{}, stop: func() bool { return true }, pay: sp}
	buf := make([]byte, 256<<10)
	if n, err := b.Read(buf); n == 0 || err != nil {
		t.Fatalf("read within the cap: %d, %v", n, err)
	}
	sp.Verified(len(buf))
	if sp.failed() {
		t.Fatal("payment stopped with a whole block of the cap left")
	}
	if n, err := b.Read(buf); n == 0 || err != nil {
		t.Fatalf("read of the cap's last block: %d, %v", n, err)
	}
	sp.Verified(len(buf)) // the cap reached: no whole block left to pay
	if !sp.failed() {
		t.Fatal("the stream reads on with nothing left to pay the next block with")
	}
	if n, err := b.Read(buf); !errors.Is(err, ErrPaymentStopped) || n != 0 {
		t.Fatalf("read after the payment stopped: %d, %v; want 0, ErrPaymentStopped", n, err)
	}
	if !p.takeRenew() {
		t.Fatal("a spent voucher does not make the next request reload the session")
	}
	b.Close()
	if last.Bytes != 512<<10 {
		t.Fatalf("the stream's receipts cover %d bytes; it verified %d", last.Bytes, 512<<10)
	}
}

// signEvery takes half the node's announced credit window in whole
// blocks, within [one block, four blocks]; no announcement or a bad one
// means the smallest window a node uses: a receipt per block.
func TestSignEveryFromAnnouncedWindow(t *testing.T) {
	const blk = payment.BlockSize
	for _, tc := range []struct {
		announced string
		want      uint64
	}{
		{"", blk},
		{"garbage", blk},
		{"-1048576", blk},
		{"1", blk},
		{"524288", blk},
		{"786432", blk},
		{"1048576", 2 * blk},
		{"1572864", 3 * blk},
		{"4194304", 4 * blk},
		{"999999999999999999", 4 * blk},
		{"18446744073709551615", blk}, // longer than a window can be
		{"+1048576", blk},
		{"1048576 ", blk},
		{"99999999999999999999999", blk},
	} {
		if got := signEvery(tc.announced); got != tc.want {
			t.Errorf("signEvery(%q) = %d, want %d", tc.announced, got, tc.want)
		}
	}
}

// headStream answers a framed exchange with head, then body; what the
// worker writes (the request, receipts) is kept.
type headStream struct {
	r       io.Reader
	written [][]byte
}

func (s *headStream) Read(p []byte) (int, error) { return s.r.Read(p) }
func (s *headStream) Write(p []byte) (int, error) {
	s.written = append(s.written, append([]byte(nil), p...))
	return len(p), nil
}
func (s *headStream) Close() error { return nil }

// The credit window a node's response head announces sets how often the
// stream's receipts are signed: every two blocks against a 1 MiB window,
// every block without an announcement.
func TestReceiptsFollowAnnouncedCredit(t *testing.T) {
	for _, tc := range []struct {
		credit string
		want   int // receipts for 4 blocks
	}{{"1048576", 2}, {"", 4}} {
		now := time.Unix(1_800_000_000, 0)
		p := &payer{now: func() time.Time { return now }}
		_, gw, _ := ed25519.GenerateKey(nil)
		p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), now.Add(time.Hour))})
		var head bytes.Buffer
		resp := wire.Response{Status: 200, Header: wire.Header{"content-type": CARAccept}}
		if tc.credit != "" {
			resp.Header.Set(wire.HeaderCredit, tc.credit)
		}
		if _, err := resp.WriteTo(&head); err != nil {
			t.Fatal(err)
		}
		s := &headStream{r: &head}
		sp := p.stream(testPayNode.String())
		if _, _, err := framedExchange(s, "/ipfs/x", sp); err != nil {
			t.Fatal(err)
		}
		before := len(s.written)
		for range 4 {
			sp.Verified(payment.BlockSize)
		}
		if got := len(s.written) - before; got != tc.want {
			t.Errorf("credit %q: %d receipts for 4 blocks, want %d", tc.credit, got, tc.want)
		}
	}
}

// A body is fetched from one node over several paid streams at once only
// when the node's response head said it takes receipts in any order:
// receipts are one sequence per node, and an older node resets the stream
// on which one arrives after a newer one sent on another. Unpaid streams
// carry no receipts.
func TestSeveralStreamsOnlyToNodesTakingAnyOrder(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	other := payment.NodeKey{8, 8, 8}
	if !p.severalStreams(testPayNode.String()) {
		t.Fatal("no voucher (nothing paid): one stream at a time")
	}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), now.Add(time.Hour))})
	if p.severalStreams(testPayNode.String()) {
		t.Fatal("several paid streams to a node that never said it takes receipts in any order")
	}
	if !p.severalStreams("gateway") {
		t.Fatal("a source that is not a node key is not paid: one stream at a time")
	}
	for _, tc := range []struct {
		node  payment.NodeKey
		order string
	}{{other, ""}, {other, "some"}, {testPayNode, wire.ReceiptOrderAny}} {
		var head bytes.Buffer
		resp := wire.Response{Status: 200, Header: wire.Header{"content-type": CARAccept}}
		if tc.order != "" {
			resp.Header.Set(wire.HeaderReceiptOrder, tc.order)
		}
		if _, err := resp.WriteTo(&head); err != nil {
			t.Fatal(err)
		}
		if _, _, err := framedExchange(&headStream{r: &head}, "/ipfs/x", p.stream(tc.node.String())); err != nil {
			t.Fatal(err)
		}
	}
	if !p.severalStreams(testPayNode.String()) {
		t.Fatalf("the node's head said %s: %s, still one stream at a time", wire.HeaderReceiptOrder, wire.ReceiptOrderAny)
	}
	if p.severalStreams(other.String()) {
		t.Fatal("several paid streams to a node whose heads did not say any order")
	}
}

// Several paid streams to one node at once (lanes to a node that takes
// receipts in any order): whatever order their receipts reach the node in,
// each stream's own in order, the node's tracker accepts or ignores every
// one (none is a replay, none is refused), and the latest covers exactly
// the bytes verified on all the streams, no more.
func TestSeveralStreamsReceiptsInAnyOrder(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: issue(t, gw, p.sessionKey(), now.Add(time.Hour))})
	raw, _ := base64.StdEncoding.DecodeString(p.enc)
	v, _ := payment.ParseVoucher(raw)

	const streams, blocks = 4, 40
	sent := make([][][]byte, streams)
	var wg sync.WaitGroup
	var total atomic.Uint64
	for i := range streams {
		sp := p.stream(testPayNode.String())
		sp.setSender(func(b []byte) error { sent[i] = append(sent[i], append([]byte(nil), b...)); return nil })
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for range blocks {
				n := 1 + rng.IntN(payment.BlockSize)
				sp.Verified(n)
				total.Add(uint64(n))
			}
			sp.Flush()
		})
	}
	wg.Wait()
	rng := rand.New(rand.NewPCG(7, 7))
	ignored := 0
	for trial := range 50 {
		tr, err := payment.NewTracker(v, payment.NewKeySet(gw.Public().(ed25519.PublicKey)), testPayNode, now)
		if err != nil {
			t.Fatal(err)
		}
		next := make([]int, streams)
		for left := true; left; {
			left = false
			i := rng.IntN(streams)
			for k := 0; k < streams && next[i] == len(sent[i]); k++ {
				i = (i + 1) % streams
			}
			if next[i] == len(sent[i]) {
				break
			}
			left = true
			b := sent[i][next[i]]
			next[i]++
			r, err := tr.AcceptBinary(b, now)
			if errors.Is(err, payment.ErrNotMonotonic) && tr.Overtaken(&r) {
				ignored++ // what the node ignores
				continue
			}
			if err != nil {
				t.Fatalf("trial %d: stream %d's receipt seq %d refused: %v", trial, i, r.Seq, err)
			}
		}
		if got := tr.Receipted(); got != total.Load() {
			t.Fatalf("trial %d: receipted %d, verified %d", trial, got, total.Load())
		}
	}
	if ignored == 0 {
		t.Fatal("no receipt arrived after a newer one: the orders tried are not mixed")
	}
}

// capVoucher plays the gateway: a voucher for key with the given expiry,
// budget and per-node cap, base64.
func capVoucher(t *testing.T, gw ed25519.PrivateKey, key string, expires time.Time, budget, nodeCap uint64) string {
	t.Helper()
	sk, err := payment.ParseSessionKey(key)
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: "acme", Session: sk, Budget: budget, NodeCap: nodeCap,
		Nodes: []payment.NodeTag{payment.TagOf(testPayNode)}, Expires: expires.Truncate(time.Second)}
	if err := v.Sign(gw); err != nil {
		t.Fatal(err)
	}
	raw, _ := v.MarshalBinary()
	return base64.StdEncoding.EncodeToString(raw)
}

// The next voucher is asked for before the current one runs out: once a
// stream has spent three quarters of the voucher's cap for its node, the
// payer starts one early load (not one per receipt), asks it for a fresh
// session key, and installs what it brings for new streams. The stream
// that was open goes on under the old voucher to its cap; when it runs
// into it, the new voucher stays, and no further session load is needed.
// Every byte is paid once, under one voucher or the other.
func TestNextVoucherAskedBeforeTheCap(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	aheads := 0
	p.ahead = func() { aheads++ }
	_, gw, _ := ed25519.GenerateKey(nil)
	const nodeCap = 8 * payment.BlockSize
	p.update(&Session{Voucher: capVoucher(t, gw, p.sessionKey(), now.Add(time.Hour), 1<<30, nodeCap)})
	old := p.stream(testPayNode.String())
	var last payment.Receipt
	old.setSender(func(b []byte) error { return last.UnmarshalBinary(b) })
	for i := range 5 { // 5 of 8 blocks: more than a quarter left
		old.Verified(payment.BlockSize)
		if aheads != 0 {
			t.Fatalf("early load after %d of 8 blocks", i+1)
		}
	}
	if p.sessionKey() != "" {
		t.Fatal("a fresh session key asked for with more than a quarter of the cap left")
	}
	old.Verified(payment.BlockSize)
	old.Verified(payment.BlockSize)
	if aheads != 1 {
		t.Fatalf("%d early loads after 7 of 8 blocks; want 1", aheads)
	}
	key := p.sessionKey()
	if key == "" {
		t.Fatal("the early load would not ask for a new voucher")
	}
	p.update(&Session{Voucher: capVoucher(t, gw, key, now.Add(time.Hour), 1<<30, nodeCap)})
	p.aheadDone()
	next := p.stream(testPayNode.String())
	if next == nil || next.Voucher == old.Voucher {
		t.Fatal("a new stream does not carry the new voucher")
	}
	next.setSender(func([]byte) error { return nil })
	// The old stream pays its last block, then stops: nothing is left
	// for another.
	if old.failed() {
		t.Fatal("the old stream stopped with a whole block of its cap left")
	}
	old.Verified(payment.BlockSize)
	if !old.failed() {
		t.Fatal("the old stream reads on with nothing left to pay the next block with")
	}
	if p.takeRenew() || p.sessionKey() != "" {
		t.Fatal("the old voucher's end dropped the new one: a session load on the critical path")
	}
	if s := p.stream(testPayNode.String()); s == nil || s.Voucher != next.Voucher {
		t.Fatal("the new voucher is gone after the old one ran out")
	}
	// The old stream's close pays everything it verified, though a stream
	// under the new voucher to the same node is open: receipts are one
	// sequence per voucher.
	old.Flush()
	if last.Bytes != nodeCap || last.Voucher != mustVoucherID(t, old.Voucher) {
		t.Fatalf("the old voucher's receipts cover %d bytes; want its cap, %d", last.Bytes, nodeCap)
	}
	if _, ok := next.signer.Latest(testPayNode); ok {
		t.Fatal("the new voucher signed for bytes the old one paid")
	}
}

// mustVoucherID is the ID of a base64 voucher.
func mustVoucherID(t *testing.T, enc string) payment.VoucherID {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		t.Fatal(err)
	}
	v, err := payment.ParseVoucher(raw)
	if err != nil {
		t.Fatal(err)
	}
	return v.ID()
}

// An early load that brings no voucher (the gateway failed) is not
// retried at every receipt: the next try waits aheadRetry. Without it, the
// voucher ends as before: its last stream drops it and the next request
// reloads the session.
func TestFailedEarlyVoucherLoadWaits(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	aheads := 0
	p.ahead = func() { aheads++ }
	_, gw, _ := ed25519.GenerateKey(nil)
	const nodeCap = 64 * payment.BlockSize
	p.update(&Session{Voucher: capVoucher(t, gw, p.sessionKey(), now.Add(time.Hour), 1<<30, nodeCap)})
	sp := p.stream(testPayNode.String())
	sp.setSender(func([]byte) error { return nil })
	for range 49 {
		sp.Verified(payment.BlockSize)
	}
	if aheads != 1 {
		t.Fatalf("%d early loads; want 1", aheads)
	}
	p.aheadDone() // nothing installed
	for range 5 {
		sp.Verified(payment.BlockSize)
	}
	if aheads != 1 {
		t.Fatalf("%d early loads right after a failed one; want 1", aheads)
	}
	if p.sessionKey() != "" {
		t.Fatal("after a failed early load, every session load asks for a new voucher")
	}
	now = now.Add(aheadRetry)
	sp.Verified(payment.BlockSize)
	if aheads != 2 {
		t.Fatalf("%d early loads after aheadRetry; want 2", aheads)
	}
	p.aheadDone()
	for range 9 {
		sp.Verified(payment.BlockSize)
	}
	sp.Verified(1)
	if !sp.failed() || !p.takeRenew() {
		t.Fatal("a voucher that ran out with no next one does not make the next request reload the session")
	}
	if p.stream(testPayNode.String()) != nil {
		t.Fatal("the spent voucher is still offered to new streams")
	}
}

// The budget over all nodes counts too: a voucher whose budget is three
// quarters spent asks for the next one even if no node's cap is near.
func TestNextVoucherAskedBeforeTheBudget(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	aheads := 0
	p.ahead = func() { aheads++ }
	_, gw, _ := ed25519.GenerateKey(nil)
	sk, _ := payment.ParseSessionKey(p.sessionKey())
	other := payment.NodeKey{9, 9, 9}
	v := payment.Voucher{Account: "acme", Session: sk, Budget: 8 * payment.BlockSize, NodeCap: 8 * payment.BlockSize,
		Nodes: []payment.NodeTag{payment.TagOf(testPayNode), payment.TagOf(other)}, Expires: now.Add(time.Hour).Truncate(time.Second)}
	if err := v.Sign(gw); err != nil {
		t.Fatal(err)
	}
	raw, _ := v.MarshalBinary()
	p.update(&Session{Voucher: base64.StdEncoding.EncodeToString(raw)})
	a, b := p.stream(testPayNode.String()), p.stream(other.String())
	a.setSender(func([]byte) error { return nil })
	b.setSender(func([]byte) error { return nil })
	for range 3 {
		a.Verified(payment.BlockSize)
		b.Verified(payment.BlockSize)
	}
	if aheads != 1 {
		t.Fatalf("%d early loads with 6 of 8 blocks of the budget spent over two nodes; want 1", aheads)
	}
}
