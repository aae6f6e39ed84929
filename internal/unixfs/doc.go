// Package unixfs decodes dag-pb nodes and the UnixFS data they carry, and
// looks names up in UnixFS directories and HAMT-sharded directories the way
// boxo and go-unixfsnode do. It is small enough for the js/wasm worker: it
// reads the protobuf wire format itself (protowire's rules, in wire.go), not
// with generated protobuf code, and uses murmur3 for HAMT hashing.
//
// Usage:
//
//	n, err := unixfs.DecodeNode(block)   // dag-pb PBNode
//	fs, err := unixfs.DecodeData(n.Data) // UnixFS Data message
//	switch fs.Type {
//	case unixfs.TFile: ...
//	case unixfs.THAMTShard:
//		h, err := unixfs.NewShard(n, fs)
//		hv := unixfs.NewHashBits(name)
//		res, err := h.Lookup(name, hv) // Found, Child shard or NotFound
//	}
//
// HAMT layout (boxo ipld/unixfs/hamt, go-unixfsnode/hamt): the key hash is
// the first 64 bits of murmur3 x64_128 (seed 0) in big-endian order; each
// level consumes log2(fanout) bits, most significant first; the node's Data
// is a big-endian bitfield of occupied slots, and the slot's link is found by
// counting the set bits below it. Link names are the slot index in upper-case
// hex padded to len(hex(fanout-1)) followed by the entry name; a link whose
// name is exactly the padded index is a child shard.
//
// Errors: ErrMalformed for bytes that are not valid dag-pb / UnixFS, and
// ErrUnsupported for valid structures this package does not handle.
//
// Specs: https://ipld.io/specs/codecs/dag-pb/spec/,
// https://github.com/ipfs/specs/blob/main/UNIXFS.md
package unixfs
