package receiptstore

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrClosed: the Store was used after Close.
	ErrClosed = errors.New("receiptstore: closed")
	// ErrUnknownSession: a receipt for a session whose voucher was never
	// stored.
	ErrUnknownSession = errors.New("receiptstore: unknown session")
	// ErrLocked: another process has the store open.
	ErrLocked = errors.New("receiptstore: store in use by another process")
)
