package wasmclient

import (
	"errors"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/wire"
)

// voucherRenewBefore: a voucher this close to its expiry is replaced at
// the next session load.
const voucherRenewBefore = 5 * time.Minute

// payer holds the worker's session key and voucher (docs/payments.md): it
// asks the gateway for a voucher with a fresh session key when it has none
// or the current one is about to expire, and signs receipts for the
// verified blocks of each paid stream.
type payer struct {
	now func() time.Time

	mu      sync.Mutex
	cur     *payment.Signer // voucher installed
	enc     string          // cur's voucher, base64 for the wire header
	expires time.Time
	next    *payment.Signer // key sent to the gateway, no voucher yet
	frozen  bool            // the site's account is frozen: gateway path only
	account string
	renewed bool // renew was called: reload the session now

	// open counts, per voucher and node, the paid streams that may still
	// send a receipt (from setSender to release).
	open map[openKey]int
	// anyOrder holds the nodes whose response head said they take
	// receipts in any order across streams (wire.HeaderReceiptOrder).
	anyOrder map[payment.NodeKey]bool

	// ahead loads the session with a fresh key in the background (set by
	// the Client): called once cur nears the end of what it can pay a
	// node (payment.Signer.NearEnd), so the next voucher is there before
	// a stream runs into the cap, instead of a gateway round trip after.
	ahead func()
	// aheadOf is the voucher ahead was called for (nil: none pending);
	// aheadNot is when a failed early load may be tried again.
	aheadOf  *payment.Signer
	aheadNot time.Time

	// owed holds, per node, verified bytes a voucher refused to pay
	// (its cap or budget spent by other streams meanwhile, or expired),
	// and the voucher that refused: the next voucher's receipts to the
	// node include them.
	owed map[payment.NodeKey]owedBytes
}

type owedBytes struct {
	refused *payment.Signer
	n       uint64
}

// owe records n verified bytes from node that s refused to pay.
func (p *payer) owe(node payment.NodeKey, s *payment.Signer, n uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owed == nil {
		p.owed = map[payment.NodeKey]owedBytes{}
	}
	o := p.owed[node]
	p.owed[node] = owedBytes{refused: s, n: o.n + n}
}

// takeOwed returns (and clears) the bytes owed to node, unless s is the
// voucher that refused them.
func (p *payer) takeOwed(node payment.NodeKey, s *payment.Signer) uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.owed[node]
	if !ok || o.refused == s {
		return 0
	}
	delete(p.owed, node)
	return o.n
}

// aheadRetry is how long a failed early voucher load waits before the next;
// aheadTimeout bounds one.
const (
	aheadRetry   = 10 * time.Second
	aheadTimeout = 10 * time.Second
)

// severalStreams reports whether the worker may have several streams to
// the node open at once within one body: it pays none of them (no
// voucher, or not a node key), or the node said it takes receipts in any
// order. Receipts are one sequence per node; sent on several streams at
// once, one can arrive after a newer one, and an older node resets the
// stream it came on (docs/payments.md).
func (p *payer) severalStreams(nodeID string) bool {
	if p.stream(nodeID) == nil {
		return true
	}
	nk, _ := payment.ParseNodeID(nodeID)
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.anyOrder[nk]
}

// sessionKey returns the session key to send with the next session load,
// or "" when the current voucher is still good.
func (p *payer) sessionKey() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	// While frozen, keep asking: the answer is a voucher once the account
	// is topped up.
	if !p.frozen && p.cur != nil && p.aheadOf != p.cur && p.now().Add(voucherRenewBefore).Before(p.expires) {
		return ""
	}
	if p.next == nil {
		s, err := payment.NewSigner(payment.SignerConfig{Now: p.now})
		if err != nil {
			return ""
		}
		p.next = s
	}
	return p.next.SessionKey().String()
}

// update takes the payment fields of a freshly loaded session.
func (p *payer) update(s *Session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.account = s.Account
	switch {
	case s.PaymentError == payment.Code(payment.ErrAccountFrozen):
		p.frozen = true
		return
	case s.Voucher == "":
		return
	}
	p.frozen = false
	if p.next == nil {
		return
	}
	raw, ok := decodeBase64(s.Voucher)
	if !ok {
		return
	}
	v, err := payment.ParseVoucher(raw)
	if err != nil || p.next.SetVoucher(v) != nil {
		return
	}
	p.cur, p.next, p.enc, p.expires = p.next, nil, s.Voucher, v.Expires
	p.aheadOf = nil
}

// renew drops the current voucher (a node refused it): the next session
// load asks for a new one.
func (p *payer) renew() {
	p.mu.Lock()
	p.cur, p.enc, p.renewed = nil, "", true
	p.mu.Unlock()
}

// renewFrom is renew for a voucher the signer s refused: nothing to do when
// s is no longer the current one (the next voucher, asked for ahead, is
// already installed).
func (p *payer) renewFrom(s *payment.Signer) {
	p.mu.Lock()
	if p.cur == s {
		p.cur, p.enc, p.renewed = nil, "", true
	}
	p.mu.Unlock()
}

// nearEnd starts the early load of the next voucher when s, the current
// one, can pay node at most a quarter of its cap more (or a quarter of
// its budget over all nodes), or expires within voucherRenewBefore: once
// per voucher, and not within aheadRetry of a load that brought none.
func (p *payer) nearEnd(s *payment.Signer, node payment.NodeKey) {
	if p.ahead == nil {
		return
	}
	p.mu.Lock()
	lasting := p.now().Add(voucherRenewBefore).Before(p.expires)
	p.mu.Unlock()
	if lasting && !s.NearEnd(node) {
		return
	}
	p.mu.Lock()
	start := p.cur == s && p.aheadOf != s && !p.frozen && !p.now().Before(p.aheadNot)
	if start {
		p.aheadOf = s
	}
	p.mu.Unlock()
	if start {
		p.ahead()
	}
}

// aheadDone ends an early load: when it installed no new voucher, the next
// try waits aheadRetry.
func (p *payer) aheadDone() {
	p.mu.Lock()
	if p.aheadOf != nil && p.aheadOf == p.cur {
		p.aheadOf, p.aheadNot = nil, p.now().Add(aheadRetry)
	}
	p.mu.Unlock()
}

// takeRenew reports, once, that renew was called.
func (p *payer) takeRenew() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.renewed
	p.renewed = false
	return r
}

// failed reports whether the worker stopped paying on this stream (its
// signer refused: budget spent or voucher expired); the node then ends the
// stream, which is not the node's fault.
func (sp *StreamPayment) failed() bool {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.err != nil
}

// freeze records that a node refused the account as frozen.
func (p *payer) freeze() {
	p.mu.Lock()
	p.frozen = true
	p.mu.Unlock()
}

// hasVoucher reports whether a voucher is installed and not expired.
func (p *payer) hasVoucher() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil && p.now().Before(p.expires)
}

// wantsVoucher reports whether the worker held a voucher and holds no
// valid one now (it expired, or a node refused it), its account not
// frozen: the next session load must come before any node is paid.
func (p *payer) wantsVoucher() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.expires.IsZero() && !p.frozen && (p.cur == nil || !p.now().Before(p.expires))
}

func (p *payer) isFrozen() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.frozen
}

// stream returns the payment of one stream to node, or nil when the worker
// holds no voucher or the node id is not a node key.
func (p *payer) stream(nodeID string) *StreamPayment {
	p.mu.Lock()
	cur, enc, expires := p.cur, p.enc, p.expires
	p.mu.Unlock()
	if cur == nil || !p.now().Before(expires) {
		return nil
	}
	nk, err := payment.ParseNodeID(nodeID)
	if err != nil {
		return nil
	}
	return &StreamPayment{Voucher: enc, signer: cur, node: nk, onErr: func() { p.renewFrom(cur) }, owner: p}
}

// openKey is a node under one voucher (its signer): receipts are one
// cumulative sequence per voucher and node.
type openKey struct {
	signer *payment.Signer
	node   payment.NodeKey
}

// opened counts a stream to node under signer's voucher that can carry
// receipts.
func (p *payer) opened(k openKey) {
	p.mu.Lock()
	if p.open == nil {
		p.open = map[openKey]int{}
	}
	p.open[k]++
	p.mu.Unlock()
}

// closed uncounts it and reports how many streams to the node under the
// same voucher remain.
func (p *payer) closed(k openKey) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.open[k] - 1
	if n <= 0 {
		delete(p.open, k)
		return 0
	}
	p.open[k] = n
	return n
}

// StreamPayment is what a paid stream carries: the voucher for the request
// head and the signer of the receipts sent back on the stream.
type StreamPayment struct {
	Voucher string // base64, the wire.HeaderVoucher value

	signer *payment.Signer
	node   payment.NodeKey

	onErr func() // the signer refused (over budget, expired): get a new voucher
	owner *payer // counts the node's open streams

	mu      sync.Mutex
	send    func([]byte) error // set by the transport once the head is sent
	err     error
	sent    int  // receipts sent
	broken  bool // a receipt could not be sent: no more are
	counted bool // counted open in owner, not yet released
}

// setSender installs the function that writes receipts on the stream;
// from then on the stream counts as open until release or Flush.
func (sp *StreamPayment) setSender(send func([]byte) error) {
	sp.mu.Lock()
	sp.send = send
	count := !sp.counted && sp.owner != nil
	sp.counted = sp.counted || count
	sp.mu.Unlock()
	if count {
		sp.owner.opened(openKey{sp.signer, sp.node})
	}
}

// release ends the stream's count as open (a stream that failed before
// its body, or that ended); it reports how many others to the node
// remain open. Idempotent.
func (sp *StreamPayment) release() int {
	sp.mu.Lock()
	counted := sp.counted
	sp.counted = false
	sp.mu.Unlock()
	if !counted {
		return 0
	}
	return sp.owner.closed(openKey{sp.signer, sp.node})
}

// setOrder records that the node takes receipts in any order when its
// response head says so (wire.HeaderReceiptOrder).
func (sp *StreamPayment) setOrder(announced string) {
	if announced != wire.ReceiptOrderAny || sp.owner == nil {
		return
	}
	p := sp.owner
	p.mu.Lock()
	if p.anyOrder == nil {
		p.anyOrder = map[payment.NodeKey]bool{}
	}
	p.anyOrder[sp.node] = true
	p.mu.Unlock()
}

// setCredit sets how often receipts to the node are signed from the
// credit window its response head announced (wire.HeaderCredit).
func (sp *StreamPayment) setCredit(announced string) {
	if sp.signer != nil {
		sp.signer.SetSignEvery(sp.node, signEvery(announced))
	}
}

// signEvery is how many verified bytes from a node may wait for their
// receipt, given the credit window the node announced: half the window,
// in whole blocks, between one block and maxSignEvery. Half leaves the
// node room for what a read waits for (byobMin) and a group being
// verified, so a window is never spent on bytes the worker holds
// unreceipted. Without an announcement, or with a malformed one, the
// window is taken as the smallest a node uses (wire.MinCreditWindow):
// one receipt per block, as before nodes announced it. A node that
// announces more than it grants only stalls its own streams.
func signEvery(announced string) uint64 {
	w, ok := parseDecimal(announced)
	if !ok || w < wire.MinCreditWindow {
		w = wire.MinCreditWindow
	}
	n := w / 2 / payment.BlockSize * payment.BlockSize
	return min(max(n, payment.BlockSize), maxSignEvery)
}

// parseDecimal parses a non-negative decimal integer of at most 18
// digits (strconv's parser would grow the worker's wasm by 2 KB).
func parseDecimal(s string) (uint64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// maxSignEvery bounds the bytes a receipt may wait for: 1 MiB, four
// blocks, whatever window a node announces.
const maxSignEvery = 4 * payment.BlockSize

// Verified counts n verified bytes from the node and sends a receipt when
// one is due (every signEvery bytes of the node's announced window; one
// block by default).
func (sp *StreamPayment) Verified(n int) {
	if n <= 0 {
		return
	}
	m := uint64(n)
	if sp.owner != nil {
		m += sp.owner.takeOwed(sp.node, sp.signer)
	}
	r, signed, err := sp.signer.Verified(sp.node, m)
	if err != nil && sp.owner != nil && (errors.Is(err, payment.ErrOverBudget) || errors.Is(err, payment.ErrExpired)) {
		// Verified bytes the voucher could not pay (another stream took
		// what was left while this one's block arrived): the next
		// voucher pays them, with the next bytes from the node.
		sp.owner.owe(sp.node, sp.signer, m)
	}
	sp.deliver(r, signed, err)
	if err != nil {
		return
	}
	if sp.owner != nil {
		sp.owner.nearEnd(sp.signer, sp.node)
	}
	// The stream stops at this block's end when the voucher could not pay
	// a whole next block (what is left of the node's cap or of the
	// budget), or expires within expiryMargin: a block's first groups
	// reach the page before the signer is asked to pay it. The body then
	// goes on from here on a new stream under the next voucher, and Close
	// sends the receipt for what this one verified. Streams open at once
	// can still take the last of a voucher between them; what one could
	// not pay is owed (owe) and paid under the next voucher.
	if sp.spent() {
		sp.deliver(payment.Receipt{}, false, errVoucherSpent)
	}
}

// expiryMargin: a stream whose voucher expires within it stops at its
// block's end (a block takes far less to arrive).
const expiryMargin = 30 * time.Second

// spent reports whether the stream's voucher cannot be counted on to pay
// one more whole block.
func (sp *StreamPayment) spent() bool {
	nodeLeft, budgetLeft := sp.signer.Left(sp.node)
	if nodeLeft < payment.BlockSize || budgetLeft < payment.BlockSize {
		return true
	}
	v, _ := sp.signer.Voucher()
	return sp.owner != nil && !sp.owner.now().Add(expiryMargin).Before(v.Expires)
}

// errVoucherSpent stops a stream whose voucher cannot pay its node another
// whole block.
var errVoucherSpent = errors.New("wasmclient: the voucher cannot pay the node another block")

// Flush ends the stream's payment: it sends a receipt covering every byte
// verified from the node, on any stream, unless another stream to the
// node is still open. Receipts are cumulative per node, so the last
// stream to end pays for the tails of those that ended before it, and a
// page's burst of small files costs one signature, not one per file (a
// signature is about a millisecond of the worker's one thread). What
// waits meanwhile stays under a block: Verified signs at every block's
// worth, whichever stream it comes from.
func (sp *StreamPayment) Flush() {
	if sp.release() > 0 {
		return
	}
	r, signed, err := sp.signer.Flush(sp.node)
	sp.deliver(r, signed, err)
}

func (sp *StreamPayment) deliver(r payment.Receipt, signed bool, err error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if err != nil {
		if sp.err == nil {
			sp.err = err
			if sp.onErr != nil {
				sp.onErr()
			}
		}
		return
	}
	// A stream whose signer refused more (sp.err) still sends the receipt
	// for what it verified within the voucher: Close's Flush.
	if !signed || sp.send == nil || sp.broken {
		return
	}
	var buf [payment.ReceiptBytes]byte
	b, err := r.AppendBinary(buf[:0])
	if err == nil {
		err = sp.send(b)
	}
	if err != nil {
		sp.broken = true
		if sp.err == nil {
			sp.err = err
		}
		return
	}
	sp.sent++
}

// Sent is how many receipts went out on the stream.
func (sp *StreamPayment) Sent() int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	return sp.sent
}

// onRefused maps a node's 402 to the payer's reaction.
func (p *payer) onRefused(code string) {
	switch code {
	case payment.Code(payment.ErrAccountFrozen):
		p.freeze()
	case wire.PaymentRequired:
	default:
		p.renew()
	}
}
