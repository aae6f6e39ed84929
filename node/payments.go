package node

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/receiptstore"
	"github.com/verity-cdn/verity/internal/wire"
)

// receiptsDir is the receipt store's directory under DataDir.
const receiptsDir = "receipts"

// PaymentConfig configures how the node is paid (docs/payments.md). The
// zero value works: streams with a voucher are metered, streams without
// one are served unpaid.
type PaymentConfig struct {
	// Require refuses streams that carry no voucher with 402 and
	// wire.PaymentRequired. Default false: they are served and counted
	// in verity_node_unpaid_streams_total.
	Require bool
	// CreditWindow is how many bytes a stream may deliver beyond the
	// receipts that came back since it started. Default
	// receiptstore.DefaultCreditWindow (1 MiB); at least 2 blocks
	// (512 KiB), since the worker signs once a whole block is verified.
	CreditWindow uint64
	// ReceiptTimeout is how long a stream whose window is spent waits for
	// a receipt before it is reset with wire.CodePaymentTimeout, and how
	// long after the response the node waits for the client's last
	// receipt and FIN. Default 10 s.
	ReceiptTimeout time.Duration
	// Policy decides when to settle an account. Default
	// payment.DefaultSettlePolicy.
	Policy payment.SettlePolicy
	// SettleCheck is how often the settlement policy is evaluated.
	// Default 5 s.
	SettleCheck time.Duration
	// GatewayKeys are trusted in addition to the keys the coordinator
	// publishes (for a node without a coordinator). Optional.
	GatewayKeys []ed25519.PublicKey
	// SyncInterval is the receipt store's fsync interval
	// (receiptstore.Config.SyncInterval). Default 200 ms.
	SyncInterval time.Duration
}

func (c PaymentConfig) normalize() PaymentConfig {
	if c.CreditWindow == 0 {
		c.CreditWindow = receiptstore.DefaultCreditWindow
	}
	c.CreditWindow = max(c.CreditWindow, 2*payment.BlockSize)
	if c.ReceiptTimeout <= 0 {
		c.ReceiptTimeout = 10 * time.Second
	}
	if c.SettleCheck <= 0 {
		c.SettleCheck = 5 * time.Second
	}
	return c
}

// payments is the node's side of payments: voucher admission, receipt
// checks, the receipt store and what the coordinator told it.
type payments struct {
	n     *Node
	cfg   PaymentConfig
	store *receiptstore.Store
	me    payment.NodeKey

	mu         sync.Mutex
	keys       payment.KeySet // static and learned
	static     payment.KeySet
	accounts   map[string]nodeproto.AccountState
	watched    map[string]bool // accounts served: their state is asked of the coordinator (MsgWatch)
	nodes      int
	sessions   map[payment.SessionKey]*paySession
	lastSettle map[string]time.Time
	retryAt    map[string]time.Time // after a failed settlement
	settleNow  chan struct{}        // poked when an account changes
}

func newPayments(n *Node, cfg PaymentConfig) (*payments, error) {
	st, err := receiptstore.Open(receiptstore.Config{
		Dir: filepath.Join(n.cfg.DataDir, receiptsDir), SyncInterval: cfg.SyncInterval,
		Now: n.cfg.Now, Logger: n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: receipts: %w", err)
	}
	p := &payments{
		n: n, cfg: cfg, store: st,
		static: payment.NewKeySet(cfg.GatewayKeys...), keys: payment.NewKeySet(cfg.GatewayKeys...),
		accounts: make(map[string]nodeproto.AccountState), watched: make(map[string]bool), sessions: make(map[payment.SessionKey]*paySession),
		lastSettle: make(map[string]time.Time), retryAt: make(map[string]time.Time), settleNow: make(chan struct{}, 1),
	}
	copy(p.me[:], n.priv.Public().(ed25519.PublicKey))
	return p, nil
}

// GatewayKey implements payment.GatewayKeys.
func (p *payments) GatewayKey(id payment.KeyID) (ed25519.PublicKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[id]
	return k, ok
}

// setAccount records an account's state unless the node holds a newer
// one: a settlement's answer and a push of the same account race, and the
// older must not win (it could leave the account frozen after a top-up).
// p.mu is held.
func (p *payments) setAccount(a nodeproto.AccountState) {
	if cur, ok := p.accounts[a.Name]; ok && a.Revision < cur.Revision {
		return
	}
	p.accounts[a.Name] = a
}

// onPayments applies a coordinator's payment state.
func (p *payments) onPayments(m nodeproto.Payments) {
	keys := payment.NewKeySet()
	for id, k := range p.static {
		keys[id] = k
	}
	for _, k := range m.GatewayKeys {
		if len(k) == ed25519.PublicKeySize {
			keys[payment.KeyIDOf(k)] = ed25519.PublicKey(k)
		}
	}
	var unc map[string]uint64
	if m.Full {
		unc = p.store.Uncommitted()
	}
	p.mu.Lock()
	p.keys = keys
	p.nodes = m.Nodes
	if m.Full {
		clear(p.accounts)
	}
	for _, a := range m.Accounts {
		p.setAccount(a)
	}
	var rewatch []string
	if m.Full {
		// A new coordinator session: it knows none of what this node
		// serves yet.
		for a := range p.watched {
			rewatch = append(rewatch, a)
		}
		for a := range unc {
			if !p.watched[a] {
				p.watched[a] = true
				rewatch = append(rewatch, a)
			}
		}
	}
	p.mu.Unlock()
	if len(rewatch) > 0 {
		if cc := p.n.coordClient(); cc != nil {
			cc.Watch(rewatch)
		}
	}
	select {
	case p.settleNow <- struct{}{}:
	default:
	}
}

// paySession is one session's state on this node.
type paySession struct {
	key     payment.SessionKey
	account string

	mu        sync.Mutex
	tracker   *payment.Tracker
	receipted uint64        // bytes of the latest receipt held
	changed   chan struct{} // closed and replaced when receipted grows
	base      uint64        // receipted when the session was admitted here
	sent      uint64        // body bytes delivered on all its streams since
	active    int           // paid streams running
}

// sessionWriteOff is how many credit windows a session may leave unpaid
// over all its streams, beyond one window per running stream: a stream
// that ends leaves what the worker did not verify (a cancelled request)
// unreceipted for good. Past it the session's new streams are refused
// with over_budget and the worker gets a new voucher. Without this bound
// a worker that never pays would get a fresh window on every new stream.
const sessionWriteOff = 16

// debt is the bytes delivered in the session that no receipt covers.
// ps.mu is held.
func (ps *paySession) debt() uint64 {
	return receiptstore.Unreceipted(ps.sent, ps.receipted-min(ps.receipted, ps.base))
}

// admit checks a voucher presented on a stream and returns its session.
func (p *payments) admit(enc string) (*paySession, error) {
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, &payment.Error{Op: "voucher", Err: payment.ErrMalformed}
	}
	v, err := payment.ParseVoucher(raw)
	if err != nil {
		return nil, err
	}
	now := p.n.cfg.Now()
	p.mu.Lock()
	a, known := p.accounts[v.Account]
	ps := p.sessions[v.Session]
	watch := !p.watched[v.Account]
	p.watched[v.Account] = true
	p.mu.Unlock()
	if watch {
		// The coordinator pushes only the accounts a node serves.
		if cc := p.n.coordClient(); cc != nil {
			cc.Watch([]string{v.Account})
		}
	}
	if known && a.Frozen {
		return nil, &payment.Error{Op: "voucher", Field: "account", Err: payment.ErrAccountFrozen}
	}
	if ps != nil {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		if vv, _ := ps.tracker.Voucher(); vv.ID() != v.ID() {
			return nil, &payment.Error{Op: "voucher", Field: "session", Err: payment.ErrWrongSession}
		}
		if !now.Before(v.Expires) {
			return nil, &payment.Error{Op: "voucher", Field: "expires", Err: payment.ErrExpired}
		}
		return ps, nil
	}
	t, err := payment.NewTracker(v, p, p.me, now)
	if err != nil {
		return nil, err
	}
	if err := p.store.PutVoucher(v); err != nil {
		return nil, err
	}
	ps = &paySession{key: v.Session, account: v.Account, tracker: t, changed: make(chan struct{})}
	if e, ok := p.store.Get(v.Session); ok && e.Receipt.Seq != 0 {
		// A session served before a restart: continue from its receipt.
		r := e.Receipt
		if t.Accept(&r, now) == nil {
			ps.receipted = r.Bytes
		}
	}
	ps.base = ps.receipted
	p.mu.Lock()
	if cur := p.sessions[v.Session]; cur != nil {
		ps = cur // a concurrent stream admitted it first
	} else {
		p.sessions[v.Session] = ps
	}
	p.mu.Unlock()
	p.n.metrics.paidSessions.Inc()
	return ps, nil
}

// accept checks a receipt and stores it before crediting it.
func (p *payments) accept(ps *paySession, b []byte) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r, err := ps.tracker.AcceptBinary(b, p.n.cfg.Now())
	if errors.Is(err, payment.ErrNotMonotonic) && ps.tracker.Overtaken(&r) {
		// Sent on another stream before the newer one this node holds
		// (docs/payments.md): nothing to credit, nothing to refuse. The
		// same sequence again is a replay: Overtaken says no.
		p.n.metrics.receipts.WithLabelValues("overtaken").Inc()
		return nil
	}
	if err != nil {
		p.n.metrics.receipts.WithLabelValues(payCode(err)).Inc()
		return err
	}
	if err := p.store.PutReceipt(r); err != nil {
		p.n.metrics.receipts.WithLabelValues("store").Inc()
		return err
	}
	p.n.metrics.receipts.WithLabelValues("ok").Inc()
	if r.Bytes > ps.receipted {
		p.n.metrics.receiptedBytes.Add(float64(r.Bytes - ps.receipted))
		ps.receipted = r.Bytes
		close(ps.changed)
		ps.changed = make(chan struct{})
	}
	return nil
}

func payCode(err error) string {
	if c := payment.Code(err); c != "" {
		return c
	}
	return "other"
}

func (ps *paySession) state() (uint64, <-chan struct{}) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.receipted, ps.changed
}

// Errors of a paid stream.
var (
	errReceiptTimeout  = errors.New("node: credit window spent and no receipt came in time")
	errPaymentRequired = errors.New("node: this node serves paid requests only: send a voucher")
)

func resetReason(err error) string {
	if errors.Is(err, errReceiptTimeout) {
		return "timeout"
	}
	return "refused"
}

// paidStream meters one stream: it reads the client's receipts and holds
// the body back when the credit window is spent.
type paidStream struct {
	p       *payments
	ps      *paySession
	start   uint64 // receipted when the stream started
	sent    uint64 // body bytes delivered on this stream
	done    chan struct{}
	endOnce sync.Once
	mu      sync.Mutex
	err     error // a refused receipt
	errCode uint64
}

// announce puts the node's credit window into the 2xx response head of
// the stream (wire.HeaderCredit), so the client can sign less often than
// once per block against a window larger than the smallest, and says the
// node takes receipts in any order across streams
// (wire.HeaderReceiptOrder), so the client may pay it on several streams
// at once.
func (s *paidStream) announce(code int, hdr http.Header) {
	if code/100 == 2 {
		hdr.Set(wire.HeaderCredit, strconv.FormatUint(s.p.cfg.CreditWindow, 10))
		hdr.Set(wire.HeaderReceiptOrder, wire.ReceiptOrderAny) // Tracker.Overtaken: accept ignores them
	}
}

// newPaidStream starts metering a stream of ps, or refuses it with
// over_budget when the session already owes more than it may.
func (p *payments) newPaidStream(ps *paySession) (*paidStream, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.debt() >= sessionWriteOff*p.cfg.CreditWindow {
		return nil, &payment.Error{Op: "session", Field: "receipts", Err: payment.ErrOverBudget}
	}
	ps.active++
	return &paidStream{p: p, ps: ps, start: ps.receipted, done: make(chan struct{})}, nil
}

// end stops counting the stream as running. It is idempotent.
func (s *paidStream) end() {
	s.endOnce.Do(func() {
		s.ps.mu.Lock()
		s.ps.active--
		s.ps.mu.Unlock()
	})
}

// readReceipts reads ReceiptBytes-long receipts from r until EOF, an
// error or a refused receipt. It closes s.done when it returns.
func (s *paidStream) readReceipts(r *bufio.Reader) {
	defer close(s.done)
	var buf [payment.ReceiptBytes]byte
	for {
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			if !errors.Is(err, io.EOF) && !isTimeout(err) && !errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				s.fail(&payment.Error{Op: "receipt", Err: payment.ErrMalformed})
			}
			return
		}
		if err := s.p.accept(s.ps, buf[:]); err != nil {
			s.fail(err)
			return
		}
	}
}

func (s *paidStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
		s.errCode = wire.CodePaymentRefused
	}
	s.mu.Unlock()
	s.p.n.log.Debug("receipt refused", "session", s.ps.key.String(), "err", err)
}

func (s *paidStream) failed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// credit waits until n more bytes fit in the credit window.
func (s *paidStream) credit(ctx context.Context, n int) error {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := s.failed(); err != nil {
			return err
		}
		if changed, ok := s.take(uint64(n)); ok {
			return nil
		} else if err := s.wait(ctx, changed, &timer); err != nil {
			return err
		}
	}
}

// tryCredit grants n bytes when they fit the credit window now, without
// waiting; a writer that buffers flushes before it waits in credit.
func (s *paidStream) tryCredit(n int) bool {
	if s.failed() != nil {
		return false
	}
	_, ok := s.take(uint64(n))
	return ok
}

// take grants n bytes when they fit both the stream's window and the
// session's bound (one window per running stream plus the write-off), or
// returns the channel closed at the session's next receipt.
func (s *paidStream) take(n uint64) (<-chan struct{}, bool) {
	ps := s.ps
	ps.mu.Lock()
	defer ps.mu.Unlock()
	w := s.p.cfg.CreditWindow
	paid := ps.receipted - min(ps.receipted, s.start)
	// The running streams count at most as many as one connection may
	// run (MaxStreamsPerSession): a client opening streams on many
	// connections under one voucher would otherwise be owed a window on
	// every one of them. Streams beyond wait for receipts.
	running := min(max(ps.active, 1), max(s.p.n.cfg.MaxStreamsPerSession, 1))
	if receiptstore.Unreceipted(s.sent, paid)+n <= w &&
		ps.debt()+n <= w*uint64(running+sessionWriteOff) {
		s.sent += n
		ps.sent += n
		return nil, true
	}
	return ps.changed, false
}

// wait waits for a receipt after take refused, starting the receipt timer
// on the first wait of a credit call.
func (s *paidStream) wait(ctx context.Context, changed <-chan struct{}, tp **time.Timer) error {
	if *tp == nil {
		*tp = time.NewTimer(s.p.cfg.ReceiptTimeout)
		s.p.n.metrics.creditStalls.Inc()
	}
	timer := *tp
	select {
	case <-changed:
	case <-s.done:
		if err := s.failed(); err != nil {
			return err
		}
		// No more receipts will come on this stream; others of the
		// session may still pay for it until the timer fires.
		select {
		case <-changed:
		case <-timer.C:
			return errReceiptTimeout
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-timer.C:
		return errReceiptTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// paymentResetCode is the stream reset code for a paid stream's error.
func paymentResetCode(err error) uint64 {
	if errors.Is(err, errReceiptTimeout) {
		return wire.CodePaymentTimeout
	}
	return wire.CodePaymentRefused
}

// Receipts returns the latest receipt the node holds for a session, with
// its voucher and settled bytes.
func (n *Node) Receipts(session payment.SessionKey) (receiptstore.Entry, bool) {
	if n.pay == nil {
		return receiptstore.Entry{}, false
	}
	return n.pay.store.Get(session)
}

// Uncommitted returns, per account, the receipted bytes the node has not
// settled.
func (n *Node) Uncommitted() map[string]uint64 {
	if n.pay == nil {
		return nil
	}
	return n.pay.store.Uncommitted()
}

// receiptsStatus sums the receipts kept, for the status page.
func (p *payments) receiptsStatus() ReceiptsStatus {
	st := ReceiptsStatus{Sessions: p.store.Len(), PendingBy: p.store.Uncommitted()}
	for _, b := range st.PendingBy {
		st.PendingBytes += b
	}
	st.SettledBytes = p.store.SettledTotal()
	return st
}
