package wire

import "strings"

// Block encodings (docs/protocol.md §3.2). A client lists the encodings it
// accepts for a response's blocks in the request field HeaderBlocks; a
// server that uses one of them names it in the same field of its response
// head, and sends a plain CAR otherwise. A server that does not know the
// field ignores it, as it ignores every unknown field, and a client that
// does not send it gets a plain CAR: both versions of the protocol keep
// the VERITY/1 heads and meet without an extra round trip.
const (
	// HeaderBlocks: in a request, the block encodings the client accepts
	// besides the plain CAR, comma-separated in order of preference; in a
	// response, the encoding the body uses (absent: the plain CAR).
	HeaderBlocks = "verity-blocks"
	// BlocksBao16: every raw BLAKE3 block of the CAR carries its Bao
	// encoding with 16 KiB chunk groups instead of its bytes.
	BlocksBao16 = "bao16"
	// BlocksBao16Slices: bao16, except that a raw leaf of a file that the
	// request's entity-bytes range covers only in part carries the Bao
	// slice of that part (the groups the range touches and the parents
	// above them) instead of the whole block's encoding (protocol version
	// 3). Both sides compute each leaf's window from the range and the
	// leaf's place in the file: the node never says which it sent.
	BlocksBao16Slices = "bao16-slices"
)

// BlockEncoding returns the encoding a server supporting the given ones
// uses to answer r: the first the request's HeaderBlocks field lists that
// the server supports, or "" (the plain CAR).
func (r *Request) BlockEncoding(supported ...string) string {
	for _, tok := range strings.Split(r.Header.Get(HeaderBlocks), ",") {
		tok = strings.ToLower(strings.TrimSpace(tok))
		for _, s := range supported {
			if tok != "" && tok == s {
				return s
			}
		}
	}
	return ""
}

// BlockEncoding returns the encoding of the response's body, lower-cased:
// its HeaderBlocks field, "" for the plain CAR. A client that gets one it
// did not offer must fail the response.
func (r *Response) BlockEncoding() string {
	return strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderBlocks)))
}
