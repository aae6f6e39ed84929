package payment

import "time"

// Tracker checks the receipts of one session on the node that serves it.
// The voucher is verified once, by NewTracker; each receipt then costs one
// signature verification and no allocation. A Tracker is not safe for
// concurrent use: a node keeps one per session, used by that session's
// stream.
type Tracker struct {
	node    NodeKey
	voucher Voucher
	vid     VoucherID
	last    Receipt
	has     bool
	// seen has bit i set when the receipt of sequence last.Seq-1-i was
	// accepted or ignored as overtaken (OvertakenWindow of them).
	seen uint64
}

// NewTracker verifies v (gateway signature, expiry at now, and that it
// names node: a node does not serve under a voucher that would not pay it)
// and returns a Tracker for receipts made out to node under it.
func NewTracker(v Voucher, keys GatewayKeys, node NodeKey, now time.Time) (*Tracker, error) {
	if err := v.Verify(keys, now); err != nil {
		return nil, err
	}
	if !v.Names(node) {
		return nil, errorf("voucher", "nodes", ErrWrongNode)
	}
	return &Tracker{node: node, voucher: v, vid: v.ID()}, nil
}

// Voucher returns the session's voucher and its id.
func (t *Tracker) Voucher() (Voucher, VoucherID) { return t.voucher, t.vid }

// Latest returns the latest accepted receipt.
func (t *Tracker) Latest() (Receipt, bool) { return t.last, t.has }

// Receipted returns the bytes covered by the latest accepted receipt.
func (t *Tracker) Receipted() uint64 { return t.last.Bytes }

// Accept checks r (voucher, session, node, budget, signature, expiry at
// now, and that it supersedes the latest accepted receipt) and makes it the
// latest. A receipt equal to the latest is accepted again without effect.
func (t *Tracker) Accept(r *Receipt, now time.Time) error {
	if t.has && *r == t.last {
		return nil
	}
	if !now.Before(t.voucher.Expires) {
		return errorf("voucher", "expires", ErrExpired)
	}
	if t.has {
		if err := CheckNewer(&t.last, r); err != nil {
			return err
		}
	}
	if err := r.Verify(&t.voucher, t.vid, t.node); err != nil {
		return err
	}
	if t.has {
		// The previous latest is now d behind; shifts of 64 or more
		// give 0.
		d := r.Seq - t.last.Seq
		t.seen = t.seen<<d | 1<<(d-1)
	}
	t.last, t.has = *r, true
	return nil
}

// Overtaken reports whether r, which Accept refused as not monotonic, is
// to be ignored: a receipt of this session superseded by the latest
// accepted one (a lower Seq and no more Bytes) that pays nothing new. A
// worker signs one sequence for all its streams to a node, and a receipt
// sent on one stream may arrive after a newer one sent on another; a node
// ignores such a receipt instead of refusing the stream it came on.
//
// Within OvertakenWindow sequence numbers of the latest, r must be valid
// (Receipt.Verify) and new: Overtaken records it, and a receipt of a
// sequence already accepted or ignored is a replay (false). A worker sends
// each receipt once; without this a client could repeat an old receipt
// for free and make the node verify its signature every time. A receipt
// further behind is ignored without a check: it pays nothing, and the
// tracker cannot tell it from a replay; it must still name this
// session's voucher, session key and node.
func (t *Tracker) Overtaken(r *Receipt) bool {
	if !t.has || r.Seq >= t.last.Seq || r.Bytes > t.last.Bytes ||
		r.Voucher != t.vid || r.Session != t.voucher.Session || r.Node != t.node {
		return false
	}
	d := t.last.Seq - r.Seq
	if d > OvertakenWindow {
		return true
	}
	bit := uint64(1) << (d - 1)
	if t.seen&bit != 0 || r.Verify(&t.voucher, t.vid, t.node) != nil {
		return false
	}
	t.seen |= bit
	return true
}

// AcceptBinary decodes a receipt and Accepts it.
func (t *Tracker) AcceptBinary(b []byte, now time.Time) (Receipt, error) {
	var r Receipt
	if err := r.UnmarshalBinary(b); err != nil {
		return r, err
	}
	return r, t.Accept(&r, now)
}

// OvertakenWindow is how many sequence numbers below the latest accepted
// receipt a Tracker remembers having seen (Overtaken): at the smallest
// interval between receipts (a block) 16 MiB delivered on a node's other
// streams while one receipt is on its way.
const OvertakenWindow = 64
