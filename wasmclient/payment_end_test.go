package wasmclient

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// Two streams to one node under one voucher (two files of a page, or two
// lanes of a node that takes receipts in any order), each reading a block
// at the same time, take the last of the voucher's cap between them. A
// bao16 block's groups pass framedBody.Read, and reach the page, before
// its OnBlock (Verified). What the voucher could not pay is paid under the
// next one, with the next bytes from the node: every byte that passed Read
// is paid once.
func TestConcurrentStreamsAtVoucherEnd(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	_, gw, _ := ed25519.GenerateKey(nil)
	p.update(&Session{Voucher: capVoucher(t, gw, p.sessionKey(), now.Add(time.Hour), 1<<30, 3*payment.BlockSize)})
	last := map[payment.VoucherID]uint64{}
	send := func(b []byte) error {
		var r payment.Receipt
		if err := r.UnmarshalBinary(b); err != nil {
			return err
		}
		last[r.Voucher] = max(last[r.Voucher], r.Bytes)
		return nil
	}
	type st struct {
		sp *StreamPayment
		b  *framedBody
	}
	var ss []st
	for range 2 {
		sp := p.stream(testPayNode.String())
		sp.setSender(send)
		ss = append(ss, st{sp, &framedBody{Reader: endless{}, s: nopStream{}, stop: func() bool { return true }, pay: sp}})
	}
	released := 0
	group := make([]byte, 16<<10)
	readBlock := func(s st) bool { // the block's groups, as the verifier reads them
		for range payment.BlockSize / len(group) {
			n, err := s.b.Read(group)
			if err != nil {
				return false
			}
			released += n
		}
		return true
	}
	for range 2 {
		var read []st
		for _, s := range ss {
			if readBlock(s) {
				read = append(read, s)
			}
		}
		for _, s := range read { // each block's last group verified: OnBlock
			s.sp.Verified(payment.BlockSize)
		}
	}
	for _, s := range ss {
		s.b.Close()
	}
	paid := func() (sum uint64) {
		for _, n := range last {
			sum += n
		}
		return sum
	}
	if paid() >= uint64(released) {
		t.Fatalf("receipts cover %d of %d released bytes: the voucher paid past its cap", paid(), released)
	}
	// The next voucher, and the next block from the node.
	p.update(&Session{Voucher: capVoucher(t, gw, p.sessionKey(), now.Add(time.Hour), 1<<30, 3*payment.BlockSize)})
	next := p.stream(testPayNode.String())
	if next == nil || next.Voucher == ss[0].sp.Voucher {
		t.Fatal("no new voucher for the next stream")
	}
	next.setSender(send)
	nb := &framedBody{Reader: endless{}, s: nopStream{}, stop: func() bool { return true }, pay: next}
	if !readBlock(st{next, nb}) {
		t.Fatal("the next stream read nothing")
	}
	next.Verified(payment.BlockSize)
	nb.Close()
	if paid() != uint64(released) {
		t.Fatalf("%d bytes passed framedBody.Read (reached the page); receipts over both vouchers cover %d", released, paid())
	}
	if len(last) != 2 {
		t.Fatalf("receipts under %d vouchers; want 2", len(last))
	}
}

// keyLoader plays the gateway: it issues a voucher for whatever key it is
// sent, and records the keys. While hold is set, a load waits until two
// are in flight (or a second passed).
type keyLoader struct {
	t    *testing.T
	gw   ed25519.PrivateKey
	now  time.Time
	cap  uint64
	mu   sync.Mutex
	keys []string
	hold bool
	two  chan struct{}
}

func (l *keyLoader) LoadSession(ctx context.Context) (*Session, error) {
	return l.LoadSessionKey(ctx, "")
}

func (l *keyLoader) LoadSessionKey(ctx context.Context, key string) (*Session, error) {
	l.mu.Lock()
	l.keys = append(l.keys, key)
	hold := l.hold
	if hold && len(l.keys) == 3 {
		close(l.two)
	}
	l.mu.Unlock()
	if hold {
		select {
		case <-l.two:
		case <-time.After(time.Second):
		}
	}
	s := &Session{Version: 1, Root: "bafkqaaa"}
	if key != "" {
		s.Voucher = capVoucher(l.t, l.gw, key, l.now.Add(time.Hour), 1<<30, l.cap)
	}
	return s, nil
}

// A stream whose block both brings the voucher near its end and leaves
// under a block to pay starts the early load (ahead) and stops
// (renewFrom); the body's renewVoucher then loads the session too. Both
// loads run at once: each must ask for a voucher for its own session key,
// never two vouchers for one key (the gateway holds each one's budget on
// the account until it expires, and only one can ever be used).
func TestEarlyLoadAndRenewalOneKeyEach(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	_, gw, _ := ed25519.GenerateKey(nil)
	p := &payer{now: func() time.Time { return now }}
	l := &keyLoader{t: t, gw: gw, now: now, cap: 2 * payment.BlockSize, two: make(chan struct{})}
	c := &sessionCache{loader: l, payer: p, now: p.now, defaultTTL: time.Minute}
	var wg sync.WaitGroup
	p.ahead = func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ahead(context.Background())
			p.aheadDone()
		}()
	}
	if _, _, err := c.get(context.Background()); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.hold = true
	l.mu.Unlock()
	sp := p.stream(testPayNode.String())
	sp.setSender(func([]byte) error { return nil })
	sp.Verified(payment.BlockSize)
	sp.Verified(payment.BlockSize) // the cap: ahead starts, the stream stops
	if !sp.failed() {
		t.Fatal("the stream did not stop at its voucher's cap")
	}
	if _, _, err := c.get(context.Background()); err != nil { // renewVoucher
		t.Fatal(err)
	}
	wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]int{}
	for _, k := range l.keys[1:] {
		seen[k]++
		if seen[k] > 1 {
			t.Fatalf("session loads %q: the gateway was asked %d times for a voucher for one session key", l.keys, seen[k])
		}
	}
}

// A voucher near its expiry: the next one is asked for early (within
// voucherRenewBefore), and a stream under it stops at the end of a block
// once it expires within expiryMargin, so no block starts reaching the
// page that the signer would refuse as expired.
func TestStreamStopsBeforeVoucherExpiry(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &payer{now: func() time.Time { return now }}
	aheads := 0
	p.ahead = func() { aheads++ }
	_, gw, _ := ed25519.GenerateKey(nil)
	expires := now.Add(4 * time.Minute).Truncate(time.Second)
	p.update(&Session{Voucher: capVoucher(t, gw, p.sessionKey(), expires, 1<<30, 1<<30)})
	sp := p.stream(testPayNode.String())
	var last payment.Receipt
	sp.setSender(func(b []byte) error { return last.UnmarshalBinary(b) })
	b := &framedBody{Reader: endless{}, s: nopStream{}, stop: func() bool { return true }, pay: sp}
	buf := make([]byte, payment.BlockSize)
	released := 0
	read := func() bool {
		n, err := b.Read(buf)
		if err != nil {
			if !errors.Is(err, ErrPaymentStopped) {
				t.Fatal(err)
			}
			return false
		}
		released += n
		sp.Verified(n)
		return true
	}
	if !read() || aheads != 1 || sp.failed() {
		t.Fatalf("4 minutes before expiry: early loads %d (want 1), stopped %v (want false)", aheads, sp.failed())
	}
	now = expires.Add(-expiryMargin / 2)
	if !read() || !sp.failed() {
		t.Fatalf("a stream reads on %v before its voucher expires", expiryMargin/2)
	}
	if read() {
		t.Fatal("a block read after the stream stopped")
	}
	b.Close()
	if last.Bytes != uint64(released) {
		t.Fatalf("released %d, receipted %d", released, last.Bytes)
	}
}

// blockingLoader answers its first load at once, and every later one only
// when release is closed.
type blockingLoader struct {
	loads   int
	mu      sync.Mutex
	release chan struct{}
	once    sync.Once
}

// open answers the loads waiting and every later one; again, it does
// nothing.
func (l *blockingLoader) open() { l.once.Do(func() { close(l.release) }) }

func (l *blockingLoader) LoadSession(ctx context.Context) (*Session, error) {
	l.mu.Lock()
	l.loads++
	first := l.loads == 1
	l.mu.Unlock()
	if !first {
		select {
		case <-l.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &Session{Version: 1, Root: "bafkqaaa", TTL: 1}, nil
}

// A reload that finds a load in flight (the early voucher load, with a
// gateway slow to answer) waits for it only as long as its own request
// may: then it goes on with the session it has.
func TestReloadDoesNotOutwaitItsRequest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := &blockingLoader{release: make(chan struct{})}
	c := &sessionCache{loader: l, now: func() time.Time { return now }, defaultTTL: time.Minute}
	first, _, err := c.get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.ahead(context.Background()); close(done) }()
	for { // the early load holds the token
		l.mu.Lock()
		n := l.loads
		l.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	now = now.Add(2 * time.Second) // the session's TTL passed: get reloads
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	got, _, err := c.get(ctx)
	if err != nil || got != first {
		t.Fatalf("get while a load hangs: %v, %v; want the current session", got, err)
	}
	l.open()
	<-done
}
