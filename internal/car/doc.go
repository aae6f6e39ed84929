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
