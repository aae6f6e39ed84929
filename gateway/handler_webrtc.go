package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/nodeproto"
)

// WebRTCPrefix is where the page posts a WebRTC offer for a node:
// POST /.verity/v1/webrtc/{nodeID} with the SDP offer as the body; the
// answer comes back as application/sdp.
const WebRTCPrefix = "/.verity/v1/webrtc/"

// OfferRelay relays a page's WebRTC offer to a node and returns the
// node's answer: the coordinator, which reaches nodes joined to other
// coordinators over the bus. Errors: coordinator.ErrUnknownNode, a
// *nodeproto.OfferError from the node, or the context's.
type OfferRelay interface {
	RelayOffer(ctx context.Context, node, sdp string) (string, error)
}

// kindWebRTC labels signaling requests in metrics.
const kindWebRTC = "webrtc"

// offerTimeout bounds relaying one offer and waiting for the answer.
const offerTimeout = 20 * time.Second

// serveWebRTCOffer relays an offer to a node through Config.Offers.
func (g *Gateway) serveWebRTCOffer(w http.ResponseWriter, r *http.Request) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	if !g.offers.allow(clientAddr(r), g.cfg.Now()) {
		w.Header().Set("Retry-After", "1")
		g.fail(w, r, &RequestError{Kind: ErrRateLimited, Detail: "too many offers from this address"})
		return
	}
	node := strings.TrimPrefix(r.URL.Path, WebRTCPrefix)
	if g.cfg.Offers == nil || node == "" || strings.Contains(node, "/") {
		g.fail(w, r, fmt.Errorf("%w: no node %q", ErrNotFound, clip(node)))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, nodeproto.MaxSDPBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.fail(w, r, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("offer over %d bytes", nodeproto.MaxSDPBytes)})
			return
		}
		g.fail(w, r, badRequest("reading offer: %v", err))
		return
	}
	if len(body) == 0 {
		g.fail(w, r, badRequest("empty offer"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), offerTimeout)
	defer cancel()
	answer, err := g.cfg.Offers.RelayOffer(ctx, node, string(body))
	if err != nil {
		g.fail(w, r, offerError(node, err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, answer)
}

// offerError maps a relay failure to the gateway's errors.
func offerError(node string, err error) error {
	var oe *nodeproto.OfferError
	switch {
	case errors.Is(err, coordinator.ErrUnknownNode):
		return fmt.Errorf("%w: no node %q", ErrNotFound, clip(node))
	case errors.As(err, &oe) && oe.Code == nodeproto.OfferCodeBadSDP:
		return &RequestError{Kind: ErrBadRequest, Detail: "offer refused: " + oe.Message}
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
