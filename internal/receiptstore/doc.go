// Package receiptstore is a node's durable store of payment receipts: for
// each session it serves, the voucher, the latest cumulative receipt and
// the bytes already settled, so that nothing earned is lost when the node
// is killed, and the node can assemble settlement batches per account
// (internal/ledger). It also holds CreditWindow, the node's rule for how
// far delivery may run ahead of receipts.
//
// Usage:
//
//	st, err := receiptstore.Open(receiptstore.Config{Dir: filepath.Join(dataDir, "receipts")})
//	defer st.Close()
//	err = st.PutVoucher(v)            // when a session is admitted
//	err = st.PutReceipt(r)            // after payment.Tracker accepted r
//	if !(receiptstore.CreditWindow{}).MaySend(delivered, tracker.Receipted(), nextBlock) { wait }
//	batch := st.Unsettled("acme")     // when the settle policy says so
//	err = st.MarkSettled(session, settledBytes)
//
// # Format and durability
//
// One append-only file, receipts.log, of records
//
//	length(4, big-endian) crc32c(4) type(1) payload
//
// with types 'V' (a voucher, payment encoding), 'R' (a receipt) and 'S'
// (session(32) settled bytes(8)). Every Put is one write(2) before it
// returns, so the record is in the kernel when the caller acts on it and
// survives the process being killed (kill -9); a background goroutine
// fsyncs every Config.SyncInterval (default 200 ms), which bounds what a
// power loss can take (a negative interval fsyncs inside every Put). On
// Open the log is replayed; a torn record at its end is cut off. When the
// log exceeds CompactMinBytes and CompactRatio × its live size, it is
// rewritten aside (receipts.log.tmp), fsynced and renamed over the old one;
// sessions fully settled whose voucher expired more than Config.Retain ago
// are dropped then. A LOCK file held with flock keeps a second process out
// (ErrLocked).
//
// Errors: ErrClosed, ErrUnknownSession (a receipt before its voucher),
// ErrLocked, payment.ErrWrongSession (a second voucher for a session key),
// and I/O errors wrapped with %w.
package receiptstore
