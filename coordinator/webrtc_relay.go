package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// Offers between coordinators: a browser's offer may reach any gateway,
// while the node keeps its WebSocket on one coordinator. The coordinator
// that takes the offer looks the node up in the shared nodes bucket and,
// when another coordinator holds its session, sends the offer there with
// a core NATS request on SignalSubjectPrefix + that coordinator's id; the
// reply carries the node's answer or the error, mapped back to the same
// errors a local relay returns. Nothing of it is stored in JetStream.

// SignalSubjectPrefix + a coordinator's id is the subject on which that
// coordinator takes offers relayed by others for nodes connected to it.
const SignalSubjectPrefix = "verity.signal.webrtc."

// maxRelayedOffers bounds the offers from other coordinators handled at
// once; more are answered as unreachable.
const maxRelayedOffers = 256

// maxRelayTimeout bounds how long a coordinator waits for a node on behalf
// of another coordinator.
const maxRelayTimeout = 20 * time.Second

// relayedOffer is the request of one coordinator to another.
type relayedOffer struct {
	Node      string `json:"node"`
	SDP       string `json:"sdp"`
	TimeoutMs int64  `json:"timeoutMs"` // the asking side's remaining time
}

// relayedAnswer is the reply: the node's answer, or one of the relayErr*
// kinds (with the node's refusal code for relayErrRefused).
type relayedAnswer struct {
	SDP     string `json:"sdp,omitempty"`
	Error   string `json:"error,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Error kinds in a relayedAnswer.
const (
	relayErrUnreachable = "unreachable" // no session here, or too many offers pending
	relayErrRefused     = "refused"     // the node refused: Code, Message
	relayErrTimeout     = "timeout"     // the node did not answer in time
)

// subscribeOffers starts taking relayed offers for this coordinator.
func (c *Coordinator) subscribeOffers() error {
	c.relaySem = make(chan struct{}, maxRelayedOffers)
	sub, err := c.cfg.Bus.Conn().Subscribe(SignalSubjectPrefix+c.cfg.ID, c.onRelayedOffer)
	if err != nil {
		return fmt.Errorf("coordinator: signaling subscription: %w", err)
	}
	c.relaySub = sub
	return nil
}

// onRelayedOffer runs on the NATS dispatcher: it must not block, so the
// relay runs on its own goroutine, owned by c.wg.
func (c *Coordinator) onRelayedOffer(msg *nats.Msg) {
	respond := func(a relayedAnswer) {
		b, _ := json.Marshal(a)
		_ = msg.Respond(b)
	}
	var req relayedOffer
	if err := json.Unmarshal(msg.Data, &req); err != nil || req.Node == "" {
		respond(relayedAnswer{Error: relayErrRefused, Code: nodeproto.OfferCodeInternal, Message: "malformed relayed offer"})
		return
	}
	if len(req.SDP) > nodeproto.MaxSDPBytes {
		respond(relayedAnswer{Error: relayErrRefused, Code: nodeproto.OfferCodeBadSDP, Message: fmt.Sprintf("offer of %d bytes, at most %d", len(req.SDP), nodeproto.MaxSDPBytes)})
		return
	}
	c.mu.Lock()
	conn := c.conns[req.Node]
	closed := c.closed
	if conn != nil && !closed {
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if conn == nil || closed {
		respond(relayedAnswer{Error: relayErrUnreachable})
		return
	}
	select {
	case c.relaySem <- struct{}{}:
	default:
		c.wg.Done()
		respond(relayedAnswer{Error: relayErrUnreachable})
		return
	}
	go func() {
		defer c.wg.Done()
		defer func() { <-c.relaySem }()
		timeout := min(time.Duration(req.TimeoutMs)*time.Millisecond, maxRelayTimeout)
		if timeout <= 0 {
			timeout = maxRelayTimeout
		}
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		defer cancel()
		sdp, err := c.relayLocal(ctx, conn, req.SDP)
		var oe *nodeproto.OfferError
		switch {
		case err == nil:
			respond(relayedAnswer{SDP: sdp})
		case errors.As(err, &oe):
			respond(relayedAnswer{Error: relayErrRefused, Code: oe.Code, Message: oe.Message})
		case errors.Is(err, context.DeadlineExceeded):
			respond(relayedAnswer{Error: relayErrTimeout})
		default:
			respond(relayedAnswer{Error: relayErrUnreachable})
		}
	}()
}

// relayRemote sends an offer to the coordinator holding node's session and
// maps its reply to RelayOffer's errors.
func (c *Coordinator) relayRemote(ctx context.Context, coord, node, sdp string) (string, error) {
	req := relayedOffer{Node: node, SDP: sdp, TimeoutMs: maxRelayTimeout.Milliseconds()}
	if dl, ok := ctx.Deadline(); ok {
		req.TimeoutMs = time.Until(dl).Milliseconds()
	}
	data, err := json.Marshal(req)
	if err != nil {
		return "", err
	}
	msg, err := c.cfg.Bus.Conn().RequestWithContext(ctx, SignalSubjectPrefix+coord, data)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return "", ctx.Err()
	case c.ctx.Err() != nil:
		return "", ErrClosed
	default: // no responders: that coordinator is gone
		return "", fmt.Errorf("%w: via coordinator %s: %w", ErrNodeUnreachable, coord, err)
	}
	var a relayedAnswer
	if err := json.Unmarshal(msg.Data, &a); err != nil {
		return "", fmt.Errorf("%w: via coordinator %s: malformed reply", ErrNodeUnreachable, coord)
	}
	switch a.Error {
	case "":
		if a.SDP == "" || len(a.SDP) > nodeproto.MaxSDPBytes {
			return "", fmt.Errorf("%w: via coordinator %s: bad answer", ErrNodeUnreachable, coord)
		}
		return a.SDP, nil
	case relayErrRefused:
		code := a.Code
		if code == "" {
			code = nodeproto.OfferCodeInternal
		}
		return "", &nodeproto.OfferError{Code: code, Message: clip(a.Message)}
	case relayErrTimeout:
		return "", fmt.Errorf("via coordinator %s: %w", coord, context.DeadlineExceeded)
	}
	return "", fmt.Errorf("%w: via coordinator %s", ErrNodeUnreachable, coord)
}
