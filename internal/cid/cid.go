// Package cid is a minimal, dependency-free CID (v0 and v1) implementation
// small enough for the js/wasm worker. It parses and prints CIDs and checks
// a block's bytes against the multihash a CID names.
package cid

// Multicodec and multihash codes this package knows.
const (
	CodecRaw     = 0x55
	CodecDagPB   = 0x70
	HashSHA256   = 0x12
	HashBLAKE3   = 0x1e
	HashIdentity = 0x00
)

// CID is a parsed content identifier.
type CID struct {
	Version  uint64
	Codec    uint64
	HashCode uint64
	Digest   []byte
}

// TODO(content): Parse(string), Decode([]byte) (CID, int, error), Bytes(), String() (base32 lower 'b' for v1, base58 for v0), Equal, Verify(data []byte) error.
