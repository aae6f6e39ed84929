package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"
)

// WebRTC signaling: the coordinator relays a browser's SDP offer to the
// node over the node's authenticated WebSocket and returns the node's
// answer. Nodes open no signaling endpoint of their own.
const (
	MsgWebRTCOffer  = "webrtc-offer"  // coordinator → node
	MsgWebRTCAnswer = "webrtc-answer" // node → coordinator, one per offer
)

// MaxSDPBytes bounds an offer or answer relayed through the coordinator.
const MaxSDPBytes = 16 << 10

// maxPendingOffers bounds the offers awaiting one node's answer.
const maxPendingOffers = 64

// WebRTCOffer is a browser's offer relayed to a node.
type WebRTCOffer struct {
	ID  string `json:"id"`  // echoed in the answer
	SDP string `json:"sdp"` // the offer, at most MaxSDPBytes
}

// WebRTCAnswer is a node's reply to a WebRTCOffer: the answer, or an error
// with a stable code.
type WebRTCAnswer struct {
	ID    string `json:"id"`
	SDP   string `json:"sdp,omitempty"`
	Error string `json:"error,omitempty"` // human-readable
	Code  string `json:"code,omitempty"`  // one of the OfferCode* values
}

// Codes of a refused offer.
const (
	OfferCodeBadSDP   = "bad-sdp"  // malformed or oversized offer
	OfferCodeBusy     = "busy"     // the node serves as many peers as it will
	OfferCodeDisabled = "disabled" // the node does not serve WebRTC
	OfferCodeInternal = "internal" // anything else
)

// Signaling errors of RelayOffer.
var (
	// ErrUnknownNode: no node with that id is known.
	ErrUnknownNode = errors.New("coordinator: unknown node")
	// ErrNodeUnreachable: the node is known but has no session on this
	// coordinator, or has too many offers pending.
	ErrNodeUnreachable = errors.New("coordinator: node not reachable for signaling")
	// ErrOfferRefused: the node refused the offer; see *OfferError.
	ErrOfferRefused = errors.New("coordinator: offer refused")
)

// OfferError is a node's refusal of an offer.
type OfferError struct {
	Code    string // OfferCode*
	Message string
}

func (e *OfferError) Error() string {
	return "coordinator: offer refused (" + e.Code + "): " + e.Message
}

// Unwrap returns ErrOfferRefused.
func (e *OfferError) Unwrap() error { return ErrOfferRefused }

// RelayOffer sends sdp to node over its WebSocket and waits for its answer
// until ctx is done. A node joined to another coordinator sharing the bus
// is reached through that coordinator (core NATS request/reply on
// SignalSubjectPrefix + its id), with the same limits and errors. Errors: ErrUnknownNode, ErrNodeUnreachable, an
// *OfferError, ErrClosed, or ctx's.
func (c *Coordinator) RelayOffer(ctx context.Context, node, sdp string) (string, error) {
	if len(sdp) > MaxSDPBytes {
		return "", &OfferError{Code: OfferCodeBadSDP, Message: fmt.Sprintf("offer of %d bytes, at most %d", len(sdp), MaxSDPBytes)}
	}
	c.mu.Lock()
	conn := c.conns[node]
	cs, known := c.cache[node]
	c.mu.Unlock()
	if conn == nil {
		if !known {
			return "", ErrUnknownNode
		}
		// A live node joined to another coordinator on the bus: relay
		// the offer to that coordinator.
		if other := cs.state.Coordinator; cs.state.State == StateLive && other != "" && other != c.cfg.ID {
			return c.relayRemote(ctx, other, node, sdp)
		}
		return "", ErrNodeUnreachable
	}
	return c.relayLocal(ctx, conn, sdp)
}

// relayLocal relays sdp to a node connected to this coordinator.
func (c *Coordinator) relayLocal(ctx context.Context, conn *nodeConn, sdp string) (string, error) {
	idb := make([]byte, 12)
	_, _ = rand.Read(idb)
	id := hex.EncodeToString(idb)
	ch := make(chan WebRTCAnswer, 1)
	conn.offerMu.Lock()
	if conn.offers == nil {
		conn.offers = map[string]chan WebRTCAnswer{}
	}
	if len(conn.offers) >= maxPendingOffers {
		conn.offerMu.Unlock()
		return "", ErrNodeUnreachable
	}
	conn.offers[id] = ch
	conn.offerMu.Unlock()
	defer func() {
		conn.offerMu.Lock()
		delete(conn.offers, id)
		conn.offerMu.Unlock()
	}()
	if err := conn.write(Message{Type: MsgWebRTCOffer, Offer: &WebRTCOffer{ID: id, SDP: sdp}}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNodeUnreachable, err)
	}
	select {
	case a := <-ch:
		if a.SDP == "" {
			code := a.Code
			if code == "" {
				code = OfferCodeInternal
			}
			return "", &OfferError{Code: code, Message: clip(a.Error)}
		}
		return a.SDP, nil
	case <-conn.stopCh:
		return "", ErrNodeUnreachable
	case <-c.ctx.Done():
		return "", ErrClosed
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// answer delivers a node's answer to the RelayOffer waiting for it;
// answers nobody waits for (late, or unknown ids) are dropped.
func (n *nodeConn) answer(a *WebRTCAnswer) error {
	if len(a.SDP) > MaxSDPBytes {
		return fmt.Errorf("%w: answer too large", ErrMalformed)
	}
	n.offerMu.Lock()
	ch := n.offers[a.ID]
	n.offerMu.Unlock()
	if ch != nil {
		select {
		case ch <- *a:
		default:
		}
	}
	return nil
}

// maxConcurrentOffers bounds the offers a NodeClient answers at once;
// more are refused as busy.
const maxConcurrentOffers = 16

// offerAnswerer answers a session's offers, each on its own goroutine,
// and waits for them when the session ends.
type offerAnswerer struct {
	ctx    context.Context
	cancel context.CancelFunc
	accept func(context.Context, string) (string, error)
	send   func(Message) error
	sem    chan struct{}
	wg     sync.WaitGroup
}

func newOfferAnswerer(ctx context.Context, accept func(context.Context, string) (string, error), send func(Message) error) *offerAnswerer {
	ctx, cancel := context.WithCancel(ctx)
	return &offerAnswerer{ctx: ctx, cancel: cancel, accept: accept, send: send, sem: make(chan struct{}, maxConcurrentOffers)}
}

func (o *offerAnswerer) handle(off WebRTCOffer) {
	reply := func(sdp string, err error) {
		a := WebRTCAnswer{ID: off.ID, SDP: sdp}
		if err != nil {
			a.SDP, a.Code, a.Error = "", OfferCodeInternal, err.Error()
			var oe *OfferError
			if errors.As(err, &oe) {
				a.Code, a.Error = oe.Code, oe.Message
			}
		}
		_ = o.send(Message{Type: MsgWebRTCAnswer, Answer: &a})
	}
	if o.accept == nil {
		o.wg.Go(func() { reply("", &OfferError{Code: OfferCodeDisabled, Message: "webrtc not offered"}) })
		return
	}
	select {
	case o.sem <- struct{}{}:
	default:
		o.wg.Go(func() { reply("", &OfferError{Code: OfferCodeBusy, Message: "too many offers at once"}) })
		return
	}
	o.wg.Go(func() {
		defer func() { <-o.sem }()
		ctx, cancel := context.WithTimeout(o.ctx, 20*time.Second)
		defer cancel()
		reply(o.accept(ctx, off.SDP))
	})
}

// wait cancels the offers in progress and waits for them.
func (o *offerAnswerer) wait() {
	o.cancel()
	o.wg.Wait()
}
