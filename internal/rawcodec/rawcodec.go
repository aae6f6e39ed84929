// Package rawcodec registers Decode as go-ipld-prime's decoder of the raw
// codec (0x55), in place of go-ipld-prime's own, which reads any reader
// but a bytes.Buffer with io.ReadAll. What boxo's gateway traversal hands
// the decoder for each block is a bytes.Reader over it behind the link
// system's hashing io.TeeReader: io.ReadAll grows a buffer from 512 bytes
// to the block's 256 KiB, copying and clearing it at each step, for every
// raw leaf a node serves as a CAR (630 KB allocated per leaf). Decode
// reads into a reused buffer and keeps an exact copy. What it decodes is
// the same. Import it for its side effect:
//
//	import _ "github.com/verity-cdn/verity/internal/rawcodec"
//
// Native only: it pulls in go-ipld-prime.
package rawcodec

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	// Registered first so that the registration below replaces it.
	_ "github.com/ipld/go-ipld-prime/codec/raw"
	"github.com/ipld/go-ipld-prime/datamodel"
	"github.com/ipld/go-ipld-prime/multicodec"
)

// Code is the raw codec's multicodec code.
const Code = 0x55

func init() {
	multicodec.RegisterDecoder(Code, Decode)
}

// Decode assigns the bytes r holds to na, as go-ipld-prime's raw.Decode
// does: a reader with a Bytes method (a bytes.Buffer) gives them without
// a copy, as there; any other is read into a buffer reused across calls,
// and the block's bytes copied out of it into one of their exact length.
func Decode(na datamodel.NodeAssembler, r io.Reader) error {
	if b, ok := r.(interface{ Bytes() []byte }); ok {
		return na.AssignBytes(b.Bytes())
	}
	buf := scratch.Get().(*[]byte)
	defer scratch.Put(buf)
	data, err := readAll(r, *buf)
	if err != nil {
		return fmt.Errorf("could not decode raw node: %v", err)
	}
	return na.AssignBytes(data)
}

// readAll reads r to its end through buf and returns a copy of what it
// read.
func readAll(r io.Reader, buf []byte) ([]byte, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err == io.EOF {
			return bytes.Clone(buf[:n]), nil
		}
		if err != nil {
			return nil, err
		}
	}
	// A block larger than buf.
	rest, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return append(bytes.Clone(buf), rest...), nil
}

// scratch holds the buffers Decode reads into: one byte more than a
// block of the content model, so that such a block is read in one go and
// found whole.
var scratch = sync.Pool{New: func() any { b := make([]byte, 256<<10+1); return &b }}
