package wasmclient

import (
	"errors"
	"strings"

	"github.com/verity-cdn/verity/internal/wire"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrNotFound: the path does not exist under the site's root (proved by
	// a verified CAR, or answered 404 by every source).
	ErrNotFound = errors.New("wasmclient: not found")
	// ErrBadPath: the request path cannot name UnixFS content ("..", NUL, ...).
	ErrBadPath = errors.New("wasmclient: bad path")
	// ErrNoSource: no node and no fallback could deliver the content.
	ErrNoSource = errors.New("wasmclient: no source could deliver the content")
	// ErrSession: the session document could not be loaded or is invalid.
	ErrSession = errors.New("wasmclient: session unavailable")
	// ErrNoAddress: a transport cannot reach a node (the node publishes no
	// address for it). The client skips such a pair silently.
	ErrNoAddress = errors.New("wasmclient: node has no address for this transport")
	// ErrUnsupported: the entity is of a kind the worker does not serve (symlink).
	ErrUnsupported = errors.New("wasmclient: unsupported entity kind")
	// ErrStreamReset: the source reset the stream mid-response (it failed
	// on its side, e.g. a block it could not read).
	ErrStreamReset = errors.New("wasmclient: stream reset by the source")
	// ErrBridgeGone: the page bridging a WebRTC stream closed mid-stream.
	// The node is not at fault: it is neither reported nor dropped.
	ErrBridgeGone = errors.New("wasmclient: the page bridging the stream closed")
	// ErrBridgeOverrun: the bridging page failed a WebRTC stream because
	// the worker read too slowly (more than the page holds arrived from
	// the node beyond the worker's credit). The node, which may send as
	// fast as it can, is not at fault: it is neither reported nor dropped.
	ErrBridgeOverrun = errors.New("wasmclient: the bridging page held too much for a slow reader")
	// ErrPaymentStopped: the worker stopped paying on a stream (its
	// voucher's budget or per-node cap is spent, or it expired), so the
	// body ends there at once instead of waiting for the node to give up
	// on receipts; the next attempt resumes after the last verified byte
	// with the voucher the next session load brings. The node is not at
	// fault: it is neither reported nor dropped.
	ErrPaymentStopped = errors.New("wasmclient: the worker stopped paying on this stream")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("wasmclient: client closed")
)

// SourceError is the failure of one source (a transport to a node, or the
// gateway fallback) while serving one request.
type SourceError struct {
	Transport string // transport name
	Node      string // node id, or "gateway"
	Reason    string // one of the Reason* constants, or "not-found"
	Err       error
}

func (e *SourceError) Error() string {
	return e.Transport + " " + e.Node + ": " + e.Reason + ": " + e.Err.Error()
}

func (e *SourceError) Unwrap() error { return e.Err }

// FetchError is returned when no source could serve a request: it lists what
// every source answered. It matches ErrNoSource, or ErrNotFound when every
// answering source said the content does not exist.
type FetchError struct {
	Attempts []*SourceError
	NotFound bool
}

func (e *FetchError) Error() string {
	if len(e.Attempts) == 0 {
		return ErrNoSource.Error() + " (no sources)"
	}
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	head := ErrNoSource.Error()
	if e.NotFound {
		head = ErrNotFound.Error()
	}
	return head + ": " + strings.Join(parts, "; ")
}

func (e *FetchError) Is(target error) bool {
	if e.NotFound {
		return target == ErrNotFound
	}
	return target == ErrNoSource
}

// HTTPStatus maps an error from Fetch (or from a response body) to the HTTP
// status the worker answers with.
func HTTPStatus(err error) int {
	switch {
	case err == nil:
		return 200
	case errors.Is(err, ErrNotFound), statusOf(err) == 404:
		return 404
	case errors.Is(err, ErrBadPath):
		return 400
	case errors.Is(err, ErrUnsupported):
		return 501
	case errors.Is(err, ErrSession):
		return 503
	default:
		return 502
	}
}

// statusOf is the status of a source's answer in err's chain (a
// *wire.StatusError, as every transport reports a non-2xx answer), or 0.
func statusOf(err error) int {
	if se := (*wire.StatusError)(nil); errors.As(err, &se) {
		return se.Status
	}
	return 0
}
