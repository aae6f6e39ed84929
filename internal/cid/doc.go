// Package cid is a minimal, dependency-light CID (v0 and v1) implementation
// small enough for the js/wasm worker. It parses and prints CIDs, decodes
// them from their binary form, and checks a block's bytes against the
// multihash a CID names.
//
// Usage:
//
//	c, err := cid.Parse("bafkr4i...")
//	if err != nil { ... }
//	if err := c.Verify(block); err != nil { ... } // errors.Is(err, cid.ErrHashMismatch)
//
// Supported forms: CIDv1 in base32 lower-case multibase ('b' prefix) and
// CIDv0 ("Qm...", base58btc, sha2-256 dag-pb). Supported multihashes for
// Verify: BLAKE3 (0x1e, any digest length up to MaxDigestLen), sha2-256
// (0x12, 32 bytes) and identity (0x00).
//
// Errors: ErrInvalid (malformed input, wrapped with detail), ErrUnsupported
// (well-formed but not supported here, e.g. another multibase), and
// ErrHashMismatch / *UnknownHashError from Verify.
//
// Specs: https://github.com/multiformats/cid,
// https://github.com/multiformats/multihash,
// https://github.com/multiformats/unsigned-varint.
package cid
