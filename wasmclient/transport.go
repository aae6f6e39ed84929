package wasmclient

import (
	"bufio"
	"context"
	"io"
	"sync"

	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/wire"
)

// CARAccept is the Accept value every request carries.
const CARAccept = "application/vnd.ipld.car; version=1; order=dfs; dups=y"

// Transport names of the Server-Timing header and of the stats.
const (
	TransportWebTransport = "webtransport"
	TransportWebRTC       = "webrtc"
	TransportGateway      = "gateway"
)

// Transport opens one trustless-gateway CAR response from a node.
//
// target is "/ipfs/<root>/<path>?format=car&dag-scope=entity[&entity-bytes=a:b]".
// Open returns the raw CAR body (after the VERITY/1 head for framed
// transports). A non-2xx answer is a *wire.StatusError; a node without an address
// for this transport is ErrNoAddress. Cancelling ctx aborts Open and any
// later Read on the body; Close releases the body.
type Transport interface {
	Name() string
	Open(ctx context.Context, node Node, target string) (io.ReadCloser, error)
}

// Stream is one bidirectional stream (a WebTransport stream, a WebRTC data
// channel, a TCP connection in tests).
type Stream interface {
	io.ReadWriteCloser
}

// closeWriter is the optional half-close capability of a Stream: after the
// request head the client closes its sending side.
type closeWriter interface {
	CloseWrite() error
}

// closeReader is the optional capability of a Stream to stop reading
// without aborting its sending side, so that the last receipt and the FIN
// queued before still leave.
type closeReader interface {
	CloseRead() error
}

// PaidTransport is the optional capability of a Transport to carry a
// stream payment: the voucher in the request head and receipts sent back
// on the stream while the body is verified.
type PaidTransport interface {
	OpenPaid(ctx context.Context, node Node, target string, pay *StreamPayment) (io.ReadCloser, error)
}

// StreamDialer opens a new stream to a node.
type StreamDialer interface {
	DialStream(ctx context.Context, node Node) (Stream, error)
}

// FramedTransport speaks VERITY/1 (see package wire) over streams from a
// StreamDialer: one stream per request, each offering the bao16 block
// encoding, which the verifier then reads when the node uses it.
type FramedTransport struct {
	// TransportName is what Name returns (default "webtransport").
	TransportName string
	Dialer        StreamDialer
	// Lanes is how many segments of one parallel body (docs/protocol.md
	// §7.8) are fetched from one node at once over this transport
	// (default 1). Worth more than 1 only where several streams to one
	// node do not share one congestion window: WebRTC, whose page spreads
	// a node's streams over several peer connections.
	Lanes int
}

// NodeLaner is a Transport over which one parallel body fetches several
// segments from the same node at once.
type NodeLaner interface {
	// NodeLanes is how many (1 or less: one).
	NodeLanes() int
}

var (
	_ Transport     = (*FramedTransport)(nil)
	_ PaidTransport = (*FramedTransport)(nil)
	_ NodeLaner     = (*FramedTransport)(nil)
)

// NodeLanes implements NodeLaner.
func (t *FramedTransport) NodeLanes() int { return t.Lanes }

// Name implements Transport.
func (t *FramedTransport) Name() string {
	if t.TransportName == "" {
		return TransportWebTransport
	}
	return t.TransportName
}

// Open implements Transport.
func (t *FramedTransport) Open(ctx context.Context, node Node, target string) (io.ReadCloser, error) {
	return t.OpenPaid(ctx, node, target, nil)
}

// OpenPaid implements PaidTransport; pay may be nil (an unpaid request).
func (t *FramedTransport) OpenPaid(ctx context.Context, node Node, target string, pay *StreamPayment) (io.ReadCloser, error) {
	s, err := t.Dialer.DialStream(ctx, node)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { _ = s.Close() })
	body, blocks, err := framedExchange(s, target, pay)
	if err != nil {
		if pay != nil {
			pay.release() // no body: the stream pays for nothing
		}
		stopped := stop()
		_ = s.Close()
		if !stopped && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	return &framedBody{Reader: body, s: s, stop: stop, pay: pay, blocks: blocks}, nil
}

// framedExchange writes the request head on s, half-closes it (unless the
// request is paid: receipts follow) and reads the response head. It
// returns the reader positioned at the body and the body's block encoding
// ("" for the plain CAR). Every request offers bao16-slices, then bao16
// (docs/protocol.md §3.2): a node that knows one sends raw blocks in 16
// KiB verifiable groups (and, with slices, only the groups of a range's
// first and last leaf that the range covers), any other node ignores the
// offer.
func framedExchange(s Stream, target string, pay *StreamPayment) (io.Reader, string, error) {
	req := wire.Request{Method: "GET", Target: target, Header: wire.Header{"accept": CARAccept, wire.HeaderBlocks: offeredBlocks}}
	if pay != nil {
		req.Header.Set(wire.HeaderVoucher, pay.Voucher)
	}
	if _, err := req.WriteTo(s); err != nil {
		return nil, "", err
	}
	if pay != nil {
		pay.setSender(func(b []byte) error { _, err := s.Write(b); return err })
	} else if cw, ok := s.(closeWriter); ok {
		if err := cw.CloseWrite(); err != nil {
			return nil, "", err
		}
	}
	// A small buffer for the head: the verifier reads the body through a
	// buffer of its own, which reads past this one once it is empty, and
	// a buffer allocated per request feeds the worker's garbage
	// collector, which runs on the page's thread.
	br := bufio.NewReaderSize(s, headBufSize)
	resp, err := wire.ReadResponse(br)
	if err == io.EOF {
		return nil, "", errfmt.Errorf("stream closed before the response head: %w", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, "", err
	}
	if err := resp.Err(br); err != nil {
		return nil, "", err
	}
	if pay != nil {
		pay.setCredit(resp.Header.Get(wire.HeaderCredit))
		pay.setOrder(resp.Header.Get(wire.HeaderReceiptOrder))
	}
	blocks := resp.BlockEncoding()
	if blocks != "" && blocks != wire.BlocksBao16 && blocks != wire.BlocksBao16Slices {
		return nil, "", &wire.HeadError{Op: "read response", Detail: "block encoding " + blocks + " was not offered", Err: wire.ErrMalformed}
	}
	return br, blocks, nil
}

// offeredBlocks is the request field HeaderBlocks: the block encodings
// the worker reads, in order of preference.
const offeredBlocks = wire.BlocksBao16Slices + ", " + wire.BlocksBao16

// headBufSize is the buffer a framed exchange reads its response head
// through (a head's line may be longer: it is read in pieces).
const headBufSize = 4 << 10

// encodedBody is the optional capability of a body from Transport.Open
// whose blocks come in a block encoding (wire.BlocksBao16) instead of the
// plain CAR; the verifier reads it accordingly.
type encodedBody interface {
	BlockEncoding() string
}

var _ encodedBody = (*framedBody)(nil)

// BlockEncoding implements encodedBody.
func (b *framedBody) BlockEncoding() string { return b.blocks }

type framedBody struct {
	io.Reader
	s      Stream
	stop   func() bool
	pay    *StreamPayment
	blocks string // the body's block encoding, "" for the plain CAR
	once   sync.Once
	err    error
}

// Read reads the body. Once the worker stopped paying on the stream (its
// signer refused a receipt), it fails with ErrPaymentStopped: the node
// sends at most its credit window more and then waits for receipts that
// will not come (ReceiptTimeout, 10 s by default) before it resets the
// stream, so reading on would only stall the fetch.
func (b *framedBody) Read(p []byte) (int, error) {
	if b.pay != nil && b.pay.failed() {
		return 0, ErrPaymentStopped
	}
	return b.Reader.Read(p)
}

// Close ends the stream. A paid stream first sends the receipt for every
// verified byte not yet receipted and its FIN, and only stops reading, so
// those leave.
func (b *framedBody) Close() error {
	b.once.Do(func() {
		b.stop()
		if b.pay != nil {
			b.pay.Flush()
			cw, okW := b.s.(closeWriter)
			cr, okR := b.s.(closeReader)
			if okW && okR {
				_ = cw.CloseWrite()
				b.err = cr.CloseRead()
				return
			}
		}
		b.err = b.s.Close()
	})
	return b.err
}

// ForgetNode passes the hint to the dialer when it keeps per-node state.
func (t *FramedTransport) ForgetNode(id string) {
	if f, ok := t.Dialer.(nodeForgetter); ok {
		f.ForgetNode(id)
	}
}
