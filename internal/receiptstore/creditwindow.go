package receiptstore

import "github.com/verity-cdn/verity/internal/payment"

// DefaultCreditWindow is 4 blocks of 256 KiB.
const DefaultCreditWindow = 4 * payment.BlockSize

// CreditWindow bounds what a node risks on one session: the bytes it has
// delivered and holds no receipt for. The zero value is
// DefaultCreditWindow. Since the worker signs at most one block behind
// what it verified, a window of several blocks keeps the stream flowing
// while receipts travel back, and an unpaying worker costs the node at
// most the window.
type CreditWindow struct {
	Bytes uint64 // window size; 0 means DefaultCreditWindow
}

func (w CreditWindow) size() uint64 {
	if w.Bytes == 0 {
		return DefaultCreditWindow
	}
	return w.Bytes
}

// Unreceipted is delivered − receipted, or 0 when receipts cover more.
func Unreceipted(delivered, receipted uint64) uint64 {
	if receipted >= delivered {
		return 0
	}
	return delivered - receipted
}

// MaySend reports whether the node may send a next block of next bytes in
// a session where it delivered delivered bytes and holds a receipt for
// receipted: only if the unreceipted bytes, that block included, stay
// within the window. A node that may not send waits for a receipt, and
// ends the stream if none comes.
func (w CreditWindow) MaySend(delivered, receipted, next uint64) bool {
	return Unreceipted(delivered, receipted)+next <= w.size()
}
