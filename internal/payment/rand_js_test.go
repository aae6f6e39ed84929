//go:build js

package payment

import (
	"bytes"
	"testing"
)

// TestJSRandom reads more than one getRandomValues call can fill and
// checks the bytes are filled and differ between reads.
func TestJSRandom(t *testing.T) {
	a, b := make([]byte, 2*maxRandomChunk+17), make([]byte, 2*maxRandomChunk+17)
	for _, p := range [][]byte{a, b} {
		if n, err := (jsRandom{}).Read(p); err != nil || n != len(p) {
			t.Fatalf("Read: %d, %v", n, err)
		}
	}
	if bytes.Equal(a, b) {
		t.Fatal("two reads gave the same bytes")
	}
	for _, p := range [][]byte{a[:64], a[maxRandomChunk : maxRandomChunk+64], a[len(a)-17:]} {
		if bytes.Count(p, []byte{0}) == len(p) {
			t.Fatal("a chunk was left zero")
		}
	}
	if n, err := (jsRandom{}).Read(nil); n != 0 || err != nil {
		t.Fatalf("empty Read: %d, %v", n, err)
	}
}

// TestSignerDefaultRandom makes two signers with the default source, as the
// worker does: different session keys.
func TestSignerDefaultRandom(t *testing.T) {
	s1, err := NewSigner(SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSigner(SignerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if s1.SessionKey() == s2.SessionKey() {
		t.Fatal("two sessions got the same key")
	}
}
