package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// WebRTC signaling: the coordinator relays a browser's SDP offer to the
// node over the node's authenticated WebSocket (nodeproto.MsgWebRTCOffer)
// and returns the node's answer. Nodes open no signaling endpoint of their
// own.

// maxPendingOffers bounds the offers awaiting one node's answer.
const maxPendingOffers = 64

// Signaling errors of RelayOffer.
var (
	// ErrUnknownNode: no node with that id is known.
	ErrUnknownNode = errors.New("coordinator: unknown node")
	// ErrNodeUnreachable: the node is known but has no session on this
	// coordinator, or has too many offers pending.
	ErrNodeUnreachable = errors.New("coordinator: node not reachable for signaling")
)

// RelayOffer sends sdp to node over its WebSocket and waits for its answer
// until ctx is done. A node joined to another coordinator sharing the bus
// is reached through that coordinator (core NATS request/reply on
// SignalSubjectPrefix + its id), with the same limits and errors. Errors:
// ErrUnknownNode, ErrNodeUnreachable, a *nodeproto.OfferError (wrapping
// nodeproto.ErrOfferRefused), ErrClosed, or ctx's.
func (c *Coordinator) RelayOffer(ctx context.Context, node, sdp string) (string, error) {
	if len(sdp) > nodeproto.MaxSDPBytes {
		return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBadSDP, Message: fmt.Sprintf("offer of %d bytes, at most %d", len(sdp), nodeproto.MaxSDPBytes)}
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
	ch := make(chan nodeproto.WebRTCAnswer, 1)
	conn.offerMu.Lock()
	if conn.offers == nil {
		conn.offers = map[string]chan nodeproto.WebRTCAnswer{}
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
	if err := conn.write(nodeproto.Message{Type: nodeproto.MsgWebRTCOffer, Offer: &nodeproto.WebRTCOffer{ID: id, SDP: sdp}}); err != nil {
		return "", fmt.Errorf("%w: %w", ErrNodeUnreachable, err)
	}
	select {
	case a := <-ch:
		if a.SDP == "" {
			code := a.Code
			if code == "" {
				code = nodeproto.OfferCodeInternal
			}
			return "", &nodeproto.OfferError{Code: code, Message: clip(a.Error)}
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
func (n *nodeConn) answer(a *nodeproto.WebRTCAnswer) error {
	if len(a.SDP) > nodeproto.MaxSDPBytes {
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
