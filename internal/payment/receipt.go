package payment

import "encoding/binary"

// version(1) voucher(32) node(32) session(32) bytes(8) seq(8)
const receiptBody = 1 + 32 + 32 + 32 + 8 + 8

// Receipt is a worker's signed statement that Node has delivered Bytes
// verified bytes, in all, in the session of Voucher. Receipts are
// cumulative: a later one (higher Seq) supersedes the earlier ones, so only
// the latest per node and session is ever kept or settled.
type Receipt struct {
	Version   uint8
	Voucher   VoucherID
	Node      NodeKey
	Session   SessionKey
	Bytes     uint64 // cumulative verified bytes from Node in this session
	Seq       uint64 // strictly increasing per node and session, from 1
	Signature [signatureSize]byte
}

func (r *Receipt) appendBody(b []byte) []byte {
	b = append(b, r.Version)
	b = append(b, r.Voucher[:]...)
	b = append(b, r.Node[:]...)
	b = append(b, r.Session[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Bytes)
	return binary.BigEndian.AppendUint64(b, r.Seq)
}

// signingBytes writes ReceiptDomain and the body into buf.
func (r *Receipt) signingBytes(buf *[len(ReceiptDomain) + receiptBody]byte) []byte {
	return r.appendBody(append(buf[:0], ReceiptDomain...))
}

func (r *Receipt) check() error {
	if r.Version != ReceiptVersion {
		return errorf("receipt", "version", ErrMalformed)
	}
	if r.Seq == 0 {
		return errorf("receipt", "seq", ErrMalformed)
	}
	return nil
}

// Sign fills in Version (when zero) and Session from priv and signs r.
func (r *Receipt) Sign(priv PrivateKey) error {
	if len(priv) != privateKeySize {
		return errorf("receipt", "key", ErrMalformed)
	}
	if r.Version == 0 {
		r.Version = ReceiptVersion
	}
	copy(r.Session[:], priv[32:])
	if err := r.check(); err != nil {
		return err
	}
	var buf [len(ReceiptDomain) + receiptBody]byte
	if !sign(&r.Signature, priv, r.signingBytes(&buf)) {
		return errorf("receipt", "key", ErrMalformed)
	}
	return nil
}

// AppendBinary appends the canonical encoding (ReceiptBytes long) to b.
func (r *Receipt) AppendBinary(b []byte) ([]byte, error) {
	if err := r.check(); err != nil {
		return b, err
	}
	b = r.appendBody(b)
	return append(b, r.Signature[:]...), nil
}

// MarshalBinary returns the canonical encoding.
func (r *Receipt) MarshalBinary() ([]byte, error) {
	return r.AppendBinary(make([]byte, 0, ReceiptBytes))
}

// UnmarshalBinary decodes exactly ReceiptBytes bytes. It checks the form,
// not the signature: call Verify. It does not allocate.
func (r *Receipt) UnmarshalBinary(b []byte) error {
	if len(b) != ReceiptBytes {
		return errorf("receipt", "length", ErrMalformed)
	}
	if b[0] != ReceiptVersion {
		return errorf("receipt", "version", ErrMalformed)
	}
	r.Version = b[0]
	copy(r.Voucher[:], b[1:33])
	copy(r.Node[:], b[33:65])
	copy(r.Session[:], b[65:97])
	r.Bytes = binary.BigEndian.Uint64(b[97:])
	r.Seq = binary.BigEndian.Uint64(b[105:])
	copy(r.Signature[:], b[113:])
	return r.check()
}

// ParseReceipt decodes a receipt; see UnmarshalBinary.
func ParseReceipt(b []byte) (Receipt, error) {
	var r Receipt
	err := r.UnmarshalBinary(b)
	return r, err
}

// VerifySignature checks that r is signed by the session key it names.
func (r *Receipt) VerifySignature() error {
	if err := r.check(); err != nil {
		return err
	}
	var buf [len(ReceiptDomain) + receiptBody]byte
	if !verify(r.Session[:], r.signingBytes(&buf), r.Signature[:]) {
		return errorf("receipt", "signature", ErrBadSignature)
	}
	return nil
}

// Verify checks r against an already verified voucher whose id is vid, for
// node: the voucher and session it names, the node (which the voucher
// must name), the node's cap (Voucher.Cap) and the signature. It does not
// check monotonicity (CheckNewer) nor expiry (Voucher.Verify).
func (r *Receipt) Verify(v *Voucher, vid VoucherID, node NodeKey) error {
	switch {
	case r.Voucher != vid:
		return errorf("receipt", "voucher", ErrWrongSession)
	case r.Session != v.Session:
		return errorf("receipt", "session", ErrWrongSession)
	case r.Node != node:
		return errorf("receipt", "node", ErrWrongNode)
	case !v.Names(node):
		return errorf("voucher", "nodes", ErrWrongNode)
	case r.Bytes > v.Cap():
		return errorf("receipt", "bytes", ErrOverBudget)
	}
	return r.VerifySignature()
}

// CheckNewer returns nil when next supersedes prev (same voucher, node and
// session checked by Verify): a higher Seq and no fewer Bytes.
// Otherwise it returns ErrNotMonotonic.
func CheckNewer(prev, next *Receipt) error {
	if next.Seq <= prev.Seq {
		return errorf("receipt", "seq", ErrNotMonotonic)
	}
	if next.Bytes < prev.Bytes {
		return errorf("receipt", "bytes", ErrNotMonotonic)
	}
	return nil
}
