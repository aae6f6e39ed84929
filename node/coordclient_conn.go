package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// coordConn is a session's WebSocket with one reader for its whole life
// (the reader also processes control frames).
type coordConn struct {
	ws     *websocket.Conn
	msgs   chan readResult
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type readResult struct {
	typ  websocket.MessageType
	data []byte
	err  error
}

func newCoordConn(ws *websocket.Conn) *coordConn {
	// The reader has a context of its own: cancelling a read closes the
	// connection, and leaving sends a close frame first.
	rctx, cancel := context.WithCancel(context.Background())
	c := &coordConn{ws: ws, msgs: make(chan readResult), cancel: cancel}
	c.wg.Go(func() {
		for {
			typ, data, err := ws.Read(rctx)
			select {
			case c.msgs <- readResult{typ, data, err}:
			case <-rctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	})
	return c
}

// recv waits up to timeout for the next message.
func (c *coordConn) recv(ctx context.Context, timeout time.Duration) (nodeproto.Message, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.msgs:
		if r.err != nil {
			return nodeproto.Message{}, closeError(r.err)
		}
		var m nodeproto.Message
		if err := json.Unmarshal(r.data, &m); err != nil {
			return nodeproto.Message{}, fmt.Errorf("%w: malformed message", ErrCoordinatorProtocol)
		}
		return m, nil
	case <-t.C:
		return nodeproto.Message{}, errors.New("node: no answer from coordinator")
	case <-ctx.Done():
		return nodeproto.Message{}, ctx.Err()
	}
}

// send writes m, within coordWriteTimeout.
func (c *coordConn) send(ctx context.Context, m nodeproto.Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, coordWriteTimeout)
	defer cancel()
	return c.ws.Write(wctx, websocket.MessageText, b)
}

// leave passes on err, the reason a session ended, unless ctx is done:
// then the node is leaving on purpose and says so with a normal closure,
// which the coordinator records as the node leaving.
func (c *coordConn) leave(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		_ = c.ws.Close(websocket.StatusNormalClosure, "node shutting down")
		return ctx.Err()
	}
	return err
}

// close stops the reader and drops the connection.
func (c *coordConn) close() {
	c.cancel()
	c.wg.Wait()
	_ = c.ws.CloseNow()
}

// closeError turns the coordinator's refusal of the operator credential
// into an error wrapping ErrOperatorRefused, with its reason.
func closeError(err error) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) && ce.Code == nodeproto.CloseOperatorRefused {
		return fmt.Errorf("%w: %s", ErrOperatorRefused, ce.Reason)
	}
	return err
}

// clip shortens a peer-supplied string for errors and logs.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}
