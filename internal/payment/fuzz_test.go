package payment_test

import (
	"bytes"
	"testing"

	"github.com/verity-cdn/verity/internal/payment"
)

// FuzzVoucher: the decoder never panics, and whatever it accepts re-encodes
// to the same bytes (the encoding is canonical).
func FuzzVoucher(f *testing.F) {
	fx := newFixture(f, 1<<20)
	b, _ := fx.voucher.MarshalBinary()
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add(append(bytes.Clone(b), 0))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := payment.ParseVoucher(b)
		if err != nil {
			return
		}
		again, err := v.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encoded %x (%v)", b, again, err)
		}
		_ = v.VerifySignature(fx.keys) // must not panic
	})
}

// FuzzReceipt: as FuzzVoucher, and a tracker never accepts a receipt the
// session did not sign.
func FuzzReceipt(f *testing.F) {
	fx := newFixture(f, 1<<20)
	node := nodeKey("node-a")
	r := fx.receipt(f, node, 4096)
	b, _ := r.MarshalBinary()
	f.Add(b)
	f.Add(b[:100])
	f.Add(append(bytes.Clone(b), 1))
	tr := fx.tracker(f, node)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := payment.ParseReceipt(b)
		if err != nil {
			return
		}
		again, err := got.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encoded %x (%v)", b, again, err)
		}
		if err := tr.Accept(&got, t0); err == nil && got != r {
			t.Fatalf("tracker accepted a receipt nobody signed: %+v", got)
		}
	})
}

func FuzzNodeID(f *testing.F) {
	f.Add(nodeKey("a").String())
	f.Add("n")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := payment.ParseNodeID(s)
		if err == nil && k.String() != s {
			t.Fatalf("%q -> %q", s, k.String())
		}
	})
}
