package importer

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// What goes through an aheadWriter comes out in order, whole, in writes
// of any size, across the buffers' edges.
func TestAheadWriterKeepsOrder(t *testing.T) {
	var out bytes.Buffer
	a := newAheadWriter(&out)
	defer a.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	for _, n := range []int{0, 1, 100, aheadBufferSize - 101, 1, aheadBufferSize, 3*aheadBufferSize + 7, 5} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if k, err := a.Write(p); k != n || err != nil {
			t.Fatalf("Write(%d bytes) = %d, %v", n, k, err)
		}
		want = append(want, p...)
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("wrote %d bytes, not the %d given (or not in order)", out.Len(), len(want))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

type failingWriter struct{ err error }

func (f failingWriter) Write([]byte) (int, error) { return 0, f.err }

// A write that fails is reported by Flush and Close, and by the Writes
// after it.
func TestAheadWriterReportsWriteError(t *testing.T) {
	bad := errors.New("disk full")
	a := newAheadWriter(failingWriter{bad})
	if _, err := a.Write(make([]byte, 2*aheadBufferSize)); err != nil {
		t.Fatalf("the first Write: %v (the buffers take it)", err)
	}
	if err := a.Flush(); !errors.Is(err, bad) {
		t.Fatalf("Flush = %v, want %v", err, bad)
	}
	if _, err := a.Write([]byte("more")); !errors.Is(err, bad) {
		t.Fatalf("Write after the error = %v, want %v", err, bad)
	}
	if err := a.Close(); !errors.Is(err, bad) {
		t.Fatalf("Close = %v, want %v", err, bad)
	}
	if err := a.Close(); !errors.Is(err, bad) {
		t.Fatalf("Close again = %v, want %v", err, bad)
	}
}
