package rawcodec_test

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ipld/go-ipld-prime/codec/raw"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/multicodec"
	"github.com/ipld/go-ipld-prime/node/basicnode"

	"github.com/verity-cdn/verity/internal/rawcodec"
)

// TestDecodeSameAsGoIPLDPrime: Decode is the raw codec's registered
// decoder, and gives what go-ipld-prime's gives, from every kind of
// reader.
func TestDecodeSameAsGoIPLDPrime(t *testing.T) {
	dec, err := multicodec.LookupDecoder(rawcodec.Code)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 511, 512, 513, 256<<10 - 1, 256 << 10, 256<<10 + 1, 256<<10 + 2, 1<<20 + 3} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i*7 + i>>9)
		}
		readers := map[string]func() io.Reader{
			"bytes.Reader": func() io.Reader { return bytes.NewReader(data) },
			"bytes.Reader, partly": func() io.Reader {
				r := bytes.NewReader(append([]byte("xy"), data...))
				r.Seek(2, io.SeekStart)
				return r
			},
			"bytes.Buffer":       func() io.Reader { return bytes.NewBuffer(bytes.Clone(data)) },
			"strings.Reader":     func() io.Reader { return strings.NewReader(string(data)) },
			"one byte at a time": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(data)) },
		}
		for name, r := range readers {
			nb := basicnode.Prototype.Bytes.NewBuilder()
			if err := dec(nb, r()); err != nil {
				t.Fatalf("%d bytes, %s: %v", n, name, err)
			}
			want := basicnode.Prototype.Bytes.NewBuilder()
			if err := raw.Decode(want, r()); err != nil {
				t.Fatal(err)
			}
			got, _ := nb.Build().AsBytes()
			w, _ := want.Build().AsBytes()
			if !bytes.Equal(got, w) || !bytes.Equal(got, data) {
				t.Fatalf("%d bytes, %s: decoded %d bytes", n, name, len(got))
			}
		}
	}
	for _, r := range []io.Reader{iotest.ErrReader(io.ErrUnexpectedEOF), iotest.TimeoutReader(bytes.NewReader(make([]byte, 100))),
		io.MultiReader(bytes.NewReader(make([]byte, 300<<10)), iotest.ErrReader(io.ErrUnexpectedEOF))} {
		if err := dec(basicnode.Prototype.Bytes.NewBuilder(), r); err == nil {
			t.Fatal("a read error was not returned")
		}
	}
}

// BenchmarkDecode decodes a 256 KiB block from what boxo's traversal gives
// the decoder (a bytes.Reader behind an io.TeeReader to the link system's
// hasher, here io.Discard), with Decode and with go-ipld-prime's.
func BenchmarkDecode(b *testing.B) {
	data := make([]byte, 256<<10)
	for name, dec := range map[string]func(na datamodel.NodeAssembler, r io.Reader) error{"rawcodec": rawcodec.Decode, "go-ipld-prime": raw.Decode} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := dec(basicnode.Prototype.Bytes.NewBuilder(), io.TeeReader(bytes.NewReader(data), io.Discard)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
