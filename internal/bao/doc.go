// Package bao is BLAKE3 verified streaming for one block: the Bao "combined"
// encoding with chunk groups of 16 chunks (16 KiB), as iroh's bao-tree and
// lukechampine.com/blake3/bao (group 4) produce it. A receiver that knows a
// block's BLAKE3 hash (its CID digest) and length checks each 16 KiB group
// as it arrives, instead of waiting for the whole block.
//
// The encoding of n bytes is an 8-byte little-endian n, then the block's
// hash tree in pre-order: a parent node is the 64 bytes of its two
// children's chaining values (left, right), followed by the encoding of
// its left subtree, then of its right one; a subtree of at most one group
// is that group's bytes. The left subtree of a node holds the largest
// power of two of chunks below the node's total, as BLAKE3 splits its
// tree, so every subtree is a whole number of groups but the last. A block
// of g groups carries g-1 parents: 15 × 64 bytes for 256 KiB.
//
// Usage:
//
//	enc, root := bao.Encode(nil, block) // node side
//
//	n, err := bao.ReadHeader(r) // receiver: n must be the expected length
//	d := bao.NewDecoder(r, root, n)
//	for {
//		off, group, err := d.Next() // verified bytes [off, off+len(group))
//		if err == io.EOF { break }  // the whole block is verified
//		if err != nil { ... }       // nothing of the failed group was returned
//	}
//
// Natively and in the worker's wasm, hashing goes through internal/blake3
// (chunk-group chaining values, parents, the last one with the ROOT flag).
// The package links neither fmt nor reflect.
//
// Errors: ErrHashMismatch (a parent or a group does not hash to what its
// parent says; no byte of that group is returned), ErrTruncated (the
// encoding ended early), ErrMalformed (a length that cannot be the
// block's), each in an *Error that says where (a parent, a chunk group or
// the length prefix, at which byte of the block). Read errors of the
// underlying reader are returned wrapped the same way.
//
// Specs: https://github.com/oconnor663/bao/blob/master/docs/spec.md,
// https://github.com/BLAKE3-team/BLAKE3-specs.
package bao
