// Package wire is the request/response framing used on WebTransport streams
// and WebRTC data channels (protocol "VERITY/1", see docs/protocol.md §3).
//
// A client opens one bidirectional stream per request and writes a request
// head:
//
//	VERITY/1 GET /ipfs/<cid>/<path>?format=car&dag-scope=entity\r\n
//	accept: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\n
//	\r\n
//
// The server answers with a response head, then the body until the stream's
// FIN:
//
//	VERITY/1 200 OK\r\n
//	content-type: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\n
//	\r\n
//	<CAR bytes until FIN>
//
// A non-2xx response carries a short UTF-8 message (at most MaxErrorBody
// bytes) as its body; ReadErrorMessage reads it. A server that fails after
// the head was sent resets the stream with one of the Code* error codes; a
// FIN that arrives before the client's CAR traversal is complete is detected
// by the client's verifier as a truncation.
//
// # Block encodings
//
// A client may offer, in the request field HeaderBlocks, block encodings
// it accepts instead of the plain CAR (BlocksBao16: raw BLAKE3 blocks as
// their Bao encoding, so the client verifies 16 KiB at a time;
// BlocksBao16Slices: the same, with the leaves a range covers in part
// sent as Bao slices of that part); a server
// that uses one names it in the same field of its response head
// (Request.BlockEncoding, Response.BlockEncoding). Servers that do not
// know the field ignore it, so the heads stay VERITY/1 and no round trip
// is added (docs/protocol.md §3.2, §3.3).
//
// # Limits
//
// A start line is at most MaxLineBytes, a head has at most MaxHeaderFields
// header fields and is at most MaxHeadBytes in total. ReadRequest and
// ReadResponse never read past the end of the head nor past these limits.
//
// # Errors
//
// Parsing errors are *HeadError values wrapping one of ErrMalformed,
// ErrTooLarge or ErrVersion (and io.ErrUnexpectedEOF when the stream ended
// inside the head). A stream that ends before the first byte of a head yields
// io.EOF unchanged.
//
// The package depends only on the standard library's bufio, io, strconv,
// strings and errors, so the js/wasm worker can use it.
package wire
