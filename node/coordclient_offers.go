package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// maxConcurrentOffers bounds the offers a CoordClient answers at once;
// more are refused as busy.
const maxConcurrentOffers = 16

// offerAnswerer answers a session's offers, each on its own goroutine,
// and waits for them when the session ends.
type offerAnswerer struct {
	ctx    context.Context
	cancel context.CancelFunc
	accept func(context.Context, string) (string, error)
	send   func(nodeproto.Message) error
	sem    chan struct{}
	wg     sync.WaitGroup
}

func newOfferAnswerer(ctx context.Context, accept func(context.Context, string) (string, error), send func(nodeproto.Message) error) *offerAnswerer {
	ctx, cancel := context.WithCancel(ctx)
	return &offerAnswerer{ctx: ctx, cancel: cancel, accept: accept, send: send, sem: make(chan struct{}, maxConcurrentOffers)}
}

func (o *offerAnswerer) handle(off nodeproto.WebRTCOffer) {
	reply := func(sdp string, err error) {
		a := nodeproto.WebRTCAnswer{ID: off.ID, SDP: sdp}
		if err != nil {
			a.SDP, a.Code, a.Error = "", nodeproto.OfferCodeInternal, err.Error()
			var oe *nodeproto.OfferError
			if errors.As(err, &oe) {
				a.Code, a.Error = oe.Code, oe.Message
			}
		}
		_ = o.send(nodeproto.Message{Type: nodeproto.MsgWebRTCAnswer, Answer: &a})
	}
	if o.accept == nil {
		o.wg.Go(func() {
			reply("", &nodeproto.OfferError{Code: nodeproto.OfferCodeDisabled, Message: "webrtc not offered"})
		})
		return
	}
	select {
	case o.sem <- struct{}{}:
	default:
		o.wg.Go(func() {
			reply("", &nodeproto.OfferError{Code: nodeproto.OfferCodeBusy, Message: "too many offers at once"})
		})
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
