package payment

import (
	"encoding/hex"
	"testing"
)

// A voucher id's String is its lower-case hex, as encoding/hex writes it
// (node receipt stores and logs name sessions by it).
func TestVoucherIDString(t *testing.T) {
	var id VoucherID
	for i := range id {
		id[i] = byte(i*37 + 11)
	}
	for _, v := range []VoucherID{{}, id} {
		if got, want := v.String(), hex.EncodeToString(v[:]); got != want {
			t.Errorf("String() = %s, want %s", got, want)
		}
	}
}
