// Package rawcodec registers Decode as go-ipld-prime's decoder of the raw
// codec (0x55), in place of go-ipld-prime's own, which reads any reader
// but a bytes.Buffer with io.ReadAll: for the *bytes.Reader over each
// block that boxo's gateway traversal hands it, that grows a buffer from
// 512 bytes to the block's 256 KiB, copying and clearing it at each step,
// for every raw leaf a node serves as a CAR. Decode reads such a reader
// into one buffer of its exact length instead. What it decodes is the
// same. Import it for its side effect:
//
//	import _ "github.com/verity-cdn/verity/internal/rawcodec"
//
// Native only: it pulls in go-ipld-prime.
package rawcodec

import (
	"bytes"
	"fmt"
	"io"

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
// a copy, as there; a *bytes.Reader is read in one copy into a buffer of
// the length it has left; any other reader is read with io.ReadAll.
func Decode(na datamodel.NodeAssembler, r io.Reader) error {
	var data []byte
	switch r := r.(type) {
	case interface{ Bytes() []byte }:
		data = r.Bytes()
	case *bytes.Reader:
		data = make([]byte, r.Len())
		if _, err := io.ReadFull(r, data); err != nil {
			return fmt.Errorf("could not decode raw node: %v", err)
		}
	default:
		var err error
		if data, err = io.ReadAll(r); err != nil {
			return fmt.Errorf("could not decode raw node: %v", err)
		}
	}
	return na.AssignBytes(data)
}
