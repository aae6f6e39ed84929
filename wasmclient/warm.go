package wasmclient

import (
	"context"
	"errors"
)

// warmer is the optional capability of a Transport (and of the
// StreamDialer of a FramedTransport) to connect to a node ahead of any
// request: a WebTransport session's handshake done before the first
// request needs it.
type warmer interface {
	Warm(ctx context.Context, node Node) error
}

var _ warmer = (*FramedTransport)(nil)

// Warm implements warmer: it connects the dialer to node when the dialer
// can, and returns ErrNoAddress when it cannot.
func (t *FramedTransport) Warm(ctx context.Context, node Node) error {
	if w, ok := t.Dialer.(warmer); ok {
		return w.Warm(ctx, node)
	}
	return ErrNoAddress
}

// Warm loads the session (with its voucher) and connects to the first
// node a request would use, so the first requests after a cold start pay
// neither for the session's round trip to the gateway nor for a handshake.
// It returns when both are done or failed; a request made meanwhile waits
// for the same session load and connection, never for a second one.
func (c *Client) Warm(ctx context.Context) error {
	sess, err := c.Session(ctx)
	if err != nil {
		return err
	}
	for _, s := range c.sources(sess) {
		w, ok := s.transport.(warmer)
		if s.gateway || !ok || c.isDropped(s.node.ID) {
			continue
		}
		if err := w.Warm(ctx, s.node); !errors.Is(err, ErrNoAddress) {
			return err
		}
	}
	return nil
}
