// Package car reads and writes CARv1 streams (content-addressable archives)
// with strict limits, small enough for the js/wasm worker.
//
// Usage:
//
//	r, err := car.NewReader(body, car.Config{})
//	if err != nil { ... }
//	roots := r.Roots()
//	for {
//		c, data, err := r.Next()
//		if err == io.EOF { break } // clean end between sections
//		if err != nil { ... }     // ErrTruncated, ErrMalformed, ErrTooLarge
//		...
//	}
//
// NextSection and Payload read a section in two steps, its CID first and
// then its payload as a stream, for a caller that verifies a block while
// it arrives (internal/verify with a bao16 body).
//
// BaoWriter transcodes a CARv1 stream into the bao16 body of the stream
// protocol (docs/protocol.md §3.2): each section of a raw BLAKE3 block
// (BaoSection) carries the block's Bao combined encoding (internal/bao)
// instead of the block; other sections are unchanged. It checks each such
// block against its CID as it encodes it, unless it is given the block's
// outboard encoding (UseOutboards) by whoever checked the block before.
//
// The reader does not verify block hashes; the caller decides what to trust
// (see internal/verify). The header is the dag-cbor map
// {"roots": [CID...], "version": 1}; only the subset of CBOR needed for it is
// decoded (maps, arrays, text keys, unsigned integers, tag 42 CIDs), with
// unknown keys skipped up to a nesting limit.
//
// Config (zero values are defaults): MaxHeaderSize 64 KiB, MaxSectionSize
// 2 MiB (one section = CID + block bytes).
//
// Errors: ErrMalformed, ErrTruncated (the stream ended inside the header or a
// section), ErrTooLarge (a length beyond a limit), ErrVersion (not CARv1).
//
// Spec: https://ipld.io/specs/transport/car/carv1/
package car
