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
	t.last, t.has = *r, true
	return nil
}

// Overtaken reports whether r, which Accept refused as not monotonic, is a
// valid receipt of this session superseded by the latest accepted one: a
// lower Seq and no more Bytes. It pays nothing new. A worker signs one
// sequence for all its streams to a node, and a receipt sent on one stream
// may arrive after a newer one sent on another; a node ignores such a
// receipt instead of refusing the stream it came on.
func (t *Tracker) Overtaken(r *Receipt) bool {
	return t.has && r.Seq < t.last.Seq && r.Bytes <= t.last.Bytes &&
		r.Verify(&t.voucher, t.vid, t.node) == nil
}

// AcceptBinary decodes a receipt and Accepts it.
func (t *Tracker) AcceptBinary(b []byte, now time.Time) (Receipt, error) {
	var r Receipt
	if err := r.UnmarshalBinary(b); err != nil {
		return r, err
	}
	return r, t.Accept(&r, now)
}
