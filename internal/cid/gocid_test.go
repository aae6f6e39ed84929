//go:build !js

package cid

import (
	"crypto/rand"
	"testing"

	gocid "github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// TestAgainstGoCID checks text and binary forms against the reference
// implementation.
func TestAgainstGoCID(t *testing.T) {
	for i := 0; i < 200; i++ {
		data := make([]byte, i*37)
		_, _ = rand.Read(data)
		for _, h := range []uint64{mh.SHA2_256, mh.BLAKE3, mh.IDENTITY} {
			if h == mh.IDENTITY && len(data) > MaxDigestLen {
				continue
			}
			for _, codec := range []uint64{gocid.Raw, gocid.DagProtobuf} {
				ref, err := gocid.V1Builder{Codec: codec, MhType: h}.Sum(data)
				if err != nil {
					t.Fatal(err)
				}
				c, err := Parse(ref.String())
				if err != nil {
					t.Fatalf("Parse(%s): %v", ref, err)
				}
				if c.String() != ref.String() || string(c.Bytes()) != ref.KeyString() {
					t.Fatalf("mismatch for %s", ref)
				}
				if err := c.Verify(data); err != nil {
					t.Fatalf("Verify %s: %v", ref, err)
				}
			}
		}
		v0, _ := gocid.V0Builder{}.Sum(data)
		c, err := Parse(v0.String())
		if err != nil || c.String() != v0.String() || string(c.Bytes()) != v0.KeyString() {
			t.Fatalf("v0 %s: %v", v0, err)
		}
		if err := c.Verify(data); err != nil {
			t.Fatal(err)
		}
	}
}
