package wasmclient

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// decodeBase64 reads what encoding/base64's four encodings write, and
// refuses what none of them would read.
func TestDecodeBase64(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 70 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			s := enc.EncodeToString(b)
			got, ok := decodeBase64(s)
			if !ok || !bytes.Equal(got, b) {
				t.Fatalf("%q: got %x %v, want %x", s, got, ok, b)
			}
		}
	}
	for _, s := range []string{"A", "AAAAA", "AA=A", "A===", "AAA==", "=", "AA AA", "AA\nAA", "AB*D", "AAAA=", "AA==AA==", "Zm9v\x00"} {
		if got, ok := decodeBase64(s); ok {
			t.Errorf("%q decoded to %x; want refused", s, got)
		}
	}
	if got, ok := decodeBase64(""); !ok || len(got) != 0 {
		t.Errorf("empty: %x %v", got, ok)
	}
}
