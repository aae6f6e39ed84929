// Package webfile holds the HTTP rules shared by everything that turns a
// URL path into a verified file response: the gateway's first-visit serving
// and the worker (wasmclient). One copy, so both answer alike.
//
// It is standard library only and compiles for js/wasm (no net/http, no
// fmt): the worker's wasm links it.
//
// Usage:
//
//	segs, dir, err := webfile.SplitPath(u.EscapedPath()) // err: ErrBadPath → 400
//	if dir {
//		segs = append(segs, webfile.IndexFile)
//	}
//	ctype := webfile.ContentType(segs[len(segs)-1])
//	spec, ranged := webfile.ParseSpec(r.Header.Get("Range"))
//	// ... fetch spec.EntityBytes(), learn the entity's size and ETag ...
//	if ranged && webfile.IfRange(r.Header.Get("If-Range"), etag) {
//		rng, err := spec.Resolve(size) // *UnsatisfiableError → 416
//	}
//
// Rules (RFC 9110 §14 for ranges, RFC 3986 for paths):
//
//   - Paths: see SplitPath. Empty segments ("//"), "." and "..", malformed
//     percent-escapes and segments that decode to contain "/" or NUL are
//     ErrBadPath.
//   - Range: a single "bytes=a-b", "bytes=a-" or "bytes=-n" is honoured; b is
//     clamped to size-1; a ≥ size, a suffix of 0, or any range of an empty
//     file is unsatisfiable (416, "Content-Range: bytes */size"). A malformed
//     header, another unit, or several ranges are ignored: the answer is 200
//     with the full body, as RFC 9110 §14.2 allows.
//   - If-Range: Verity's validators are strong ETags (the entity's CID) and
//     it has no dates, so a range is honoured only when If-Range is absent
//     or is exactly the entity's ETag; otherwise the full body is sent.
package webfile
