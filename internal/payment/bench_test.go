package payment_test

import (
	"testing"

	"github.com/verity-cdn/verity/internal/payment"
)

// BenchmarkReceiptVerify is the node's cost per receipt: decode, check
// against the session's voucher, verify the signature, check monotonicity.
// Its inverse is receipts verified per second per core.
func BenchmarkReceiptVerify(b *testing.B) {
	fx := newFixture(b, 1<<62)
	node := nodeKey("node-a")
	const n = 1024
	encoded := make([][]byte, n)
	for i := range encoded {
		r := fx.receipt(b, node, payment.BlockSize)
		encoded[i], _ = r.MarshalBinary()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%n == 0 {
			b.StopTimer()
			tr := fx.tracker(b, node) // fresh tracker: the sequence restarts
			b.StartTimer()
			benchTracker = tr
		}
		if _, err := benchTracker.AcceptBinary(encoded[i%n], t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

var benchTracker *payment.Tracker

// BenchmarkReceiptSign is the worker's cost per receipt (one per 256 KiB
// block): count, sign, encode.
func BenchmarkReceiptSign(b *testing.B) {
	fx := newFixture(b, 1<<62)
	node := nodeKey("node-a")
	buf := make([]byte, 0, payment.ReceiptBytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r, signed, err := fx.signer.Verified(node, payment.BlockSize)
		if err != nil || !signed {
			b.Fatal(signed, err)
		}
		buf, _ = r.AppendBinary(buf[:0])
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
}

// BenchmarkVoucherVerify is the cost of admitting a session on a node, or
// of each batch item in the ledger.
func BenchmarkVoucherVerify(b *testing.B) {
	fx := newFixture(b, 1<<30)
	enc, _ := fx.voucher.MarshalBinary()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v, err := payment.ParseVoucher(enc)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Verify(fx.keys, t0); err != nil {
			b.Fatal(err)
		}
	}
}
