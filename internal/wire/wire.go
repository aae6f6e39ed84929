// Package wire is the request/response framing used on WebTransport streams
// and WebRTC data channels (protocol "VERITY/1", see docs/protocol.md).
// It has no dependencies beyond the standard library's bufio/io/strconv so
// that the js/wasm worker can use it.
package wire

import (
	"bufio"
	"io"
)

// Proto is the protocol token at the start of every frame head.
const Proto = "VERITY/1"

// Request is the head a client writes on a new stream.
//
//	VERITY/1 GET <target>\r\n
//	Name: value\r\n ...
//	\r\n
type Request struct {
	Method string // only "GET" for now
	Target string // "/ipfs/<cid>/<path>?format=car&..." as on HTTP
	Header Header
}

// Response is the head a server writes before the body.
//
//	VERITY/1 200 OK\r\n
//	Name: value\r\n ...
//	\r\n
//	<body until FIN>
type Response struct {
	Status int
	Reason string
	Header Header
}

// Header holds header fields with lower-case names.
type Header map[string]string

// Stream error codes a server uses when it resets a stream mid-body.
const (
	CodeInternal  = 0x01 // server failed mid-response
	CodeCancelled = 0x02 // server is shutting down
	CodeTimeout   = 0x03 // idle or overall timeout
)

func (r *Request) WriteTo(w io.Writer) (int64, error)  { panic("TODO(node)") }
func ReadRequest(br *bufio.Reader) (*Request, error)   { panic("TODO(node)") }
func (r *Response) WriteTo(w io.Writer) (int64, error) { panic("TODO(node)") }
func ReadResponse(br *bufio.Reader) (*Response, error) { panic("TODO(node)") }
