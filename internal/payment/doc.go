// Package payment is Verity's optimistic payment protocol: gateway-signed
// vouchers, session-signed cumulative receipts, and the node's settlement
// policy (docs/payments.md).
//
// A gateway issues a Voucher to a worker's session: the paying Account, the
// worker's SessionKey, the Nodes it chose for the session, a Budget of
// verified bytes, a per-node cap (NodeCap) and an expiry, signed by a
// gateway ed25519 key named by its KeyID. The worker (Signer) counts the
// bytes it verified from each node and signs cumulative Receipts ("node N
// has delivered B verified bytes of this session", with a sequence number)
// at most one block behind what it verified. The node (Tracker) checks each
// receipt against the voucher and keeps the latest; it later settles the
// latest receipt per session with the ledger (internal/ledger), when its
// SettlePolicy says so.
//
// Usage, worker side:
//
//	s, err := payment.NewSigner(payment.SignerConfig{})
//	// send s.SessionKey() to the gateway; it answers with a voucher
//	v, err := payment.ParseVoucher(voucherBytes)
//	err = s.SetVoucher(v)
//	r, signed, err := s.Verified(node, uint64(len(block))) // after each verified block
//	if signed { b, _ := r.MarshalBinary(); send(b) }
//
// Node side:
//
//	t, err := payment.NewTracker(v, gatewayKeys, myNodeKey, time.Now())
//	r, err := t.AcceptBinary(receiptBytes, time.Now())
//	if errors.Is(err, payment.ErrNotMonotonic) && t.Overtaken(&r) {
//		err = nil // sent on another stream before the latest: pays nothing new; once per sequence
//	}
//
// # Wire encodings (voucher version 2, receipt version 1)
//
// All integers are big-endian. A voucher is 149 + len(account) +
// len(site) + len(root) + 8 × nodes bytes, at most MaxVoucherBytes:
//
//	version(1)=2 keyID(8) accountLen(1) account(1..64, [a-z0-9._-])
//	siteLen(1) site(0..63, [a-z0-9-]) rootLen(1) root(0..96, [A-Za-z0-9])
//	session(32) budget(8, >0) nodeCap(8, 1..budget) expires(8, unix seconds)
//	nonce(16) nodeCount(1, 1..16) nodeTags(8 each) signature(64)
//
// signed over "verity-voucher/2" followed by every byte before the
// signature; the VoucherID is the SHA-256 of that same message. A voucher
// pays only the nodes it names (NodeTag: the first 8 bytes of the node
// key), each at most NodeCap: NewTracker refuses a voucher not naming its
// node, Receipt.Verify a receipt for an unnamed node or beyond the cap,
// and the Signer signs neither. Version 1 vouchers are refused with
// ErrOldVoucher. A receipt is exactly 177 bytes:
//
//	version(1)=1 voucher(32) node(32) session(32) bytes(8) seq(8, ≥1) signature(64)
//
// signed by the session key over "verity-receipt/1" followed by the first
// 113 bytes. The encodings are canonical: a decoder refuses other versions,
// lengths and trailing bytes, so re-encoding a decoded value gives back the
// same bytes.
//
// # Errors
//
// Failures wrap one sentinel in an *Error: ErrMalformed, ErrBadSignature,
// ErrUnknownGateway, ErrExpired, ErrWrongNode, ErrWrongSession,
// ErrNotMonotonic, ErrOverBudget, ErrAccountFrozen, ErrOldVoucher. Code maps them to
// stable wire codes ("bad_signature", ...) and CodeError back.
//
// # In the worker's wasm
//
// No encoding/json or fmt, so the js/wasm worker links it at little cost.
// Natively it signs, verifies and hashes with crypto/ed25519, crypto/sha256
// and crypto/rand. Under GOOS=js, where those link the FIPS 140 module, it
// uses a portable Ed25519 (RFC 8032, on filippo.io/edwards25519 and
// internal/sha512), internal/sha256 and crypto.getRandomValues, with
// byte-identical results. PrivateKey and PublicKey alias the crypto/ed25519
// types natively and []byte in wasm.
package payment
