package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// coordSession is the state of one welcomed session. Its methods run on
// the session loop (serve), the only writer of the connection but for
// offer answers, which coder/websocket serialises.
type coordSession struct {
	c    *CoordClient
	ctx  context.Context
	conn *coordConn

	lastSig []byte // signature of the record last sent

	// Pin orders and placed lists run on their own goroutines; pin
	// results come back through results so that the loop sends them.
	pctx    context.Context
	pcancel context.CancelFunc
	pwg     sync.WaitGroup
	results chan nodeproto.Pinned

	orderedMu sync.Mutex
	ordered   map[string]bool // roots whose pin order came in this session

	offers *offerAnswerer

	repair   bool // the coordinator answers repair requests
	repairID uint64
	repairs  map[uint64]chan repairReply

	payments bool // the coordinator announced payments
	settleID uint64
	pending  map[uint64]chan settleReply // settlements awaiting an answer
}

func newCoordSession(ctx context.Context, c *CoordClient, conn *coordConn, recordSig []byte, features []string) *coordSession {
	s := &coordSession{
		c: c, ctx: ctx, conn: conn, lastSig: recordSig,
		results: make(chan nodeproto.Pinned),
		ordered: make(map[string]bool),
		pending: make(map[uint64]chan settleReply),
		repairs: make(map[uint64]chan repairReply),
		repair:  slices.Contains(features, nodeproto.FeatureRepair),
	}
	s.pctx, s.pcancel = context.WithCancel(ctx)
	s.offers = newOfferAnswerer(ctx, c.cfg.Offers, s.send)
	return s
}

// loop runs until ctx ends (nil) or the connection fails.
func (s *coordSession) loop(heartbeat time.Duration) error {
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return nil
		case call := <-s.c.settles:
			if err := s.settle(call); err != nil {
				return err
			}
		case call := <-s.c.repairs:
			if err := s.askRepair(call); err != nil {
				return err
			}
		case accounts := <-s.c.watches:
			if !s.payments {
				continue // the first payments message makes the node ask again
			}
			if err := s.send(nodeproto.Message{Type: nodeproto.MsgWatch, Watch: &nodeproto.Watch{Accounts: accounts}}); err != nil {
				return err
			}
		case r := <-s.conn.msgs:
			if r.err != nil {
				return closeError(r.err)
			}
			var m nodeproto.Message
			if err := json.Unmarshal(r.data, &m); err != nil {
				return fmt.Errorf("%w: malformed message", ErrCoordinatorProtocol)
			}
			s.handle(m)
		case res := <-s.results:
			if err := s.pinned(res); err != nil {
				return err
			}
		case <-tick.C:
			if err := s.heartbeat(true); err != nil {
				return err
			}
		}
	}
}

// end stops the session's work and fails the settlements still waiting.
func (s *coordSession) end() {
	s.pcancel()
	s.pwg.Wait()
	s.offers.wait()
	for _, r := range s.pending {
		r <- settleReply{err: ErrSessionEnded}
	}
	for _, r := range s.repairs {
		r <- repairReply{err: ErrSessionEnded}
	}
}

func (s *coordSession) send(m nodeproto.Message) error { return s.conn.send(s.ctx, m) }

// handle dispatches one message from the coordinator. Messages of a type
// the node does not know, or without their body, are ignored: the
// protocol grows by adding message types.
func (s *coordSession) handle(m nodeproto.Message) {
	switch {
	case m.Type == nodeproto.MsgPin && m.Pin != nil:
		s.onPin(*m.Pin)
	case m.Type == nodeproto.MsgPlaced && m.Placed != nil:
		s.onPlaced(m.Placed.Roots)
	case m.Type == nodeproto.MsgUnpin && m.Unpin != nil:
		s.onUnpin(m.Unpin.Root)
	case m.Type == nodeproto.MsgWebRTCOffer && m.Offer != nil:
		s.offers.handle(*m.Offer)
	case m.Type == nodeproto.MsgPayments && m.Payments != nil:
		s.onPayments(*m.Payments)
	case m.Type == nodeproto.MsgSettled && m.Settled != nil:
		s.onSettled(*m.Settled)
	case m.Type == nodeproto.MsgRepairSources && m.Sources != nil:
		if r, ok := s.repairs[m.Sources.ID]; ok {
			delete(s.repairs, m.Sources.ID)
			r <- repairReply{sources: m.Sources.Sources, grant: m.Sources.Grant}
		}
	case m.Type == nodeproto.MsgReported && m.Reported != nil:
		s.onReported(m.Reported.Reasons)
	default:
		s.c.log.Debug("ignoring coordinator message", "type", clip(m.Type))
	}
}

// onPin carries out a pin order on its own goroutine; the loop sends the
// outcome (pinned).
func (s *coordSession) onPin(p nodeproto.Pin) {
	s.orderedMu.Lock()
	s.ordered[p.Root] = true
	s.orderedMu.Unlock()
	s.pwg.Go(func() {
		res := nodeproto.Pinned{Root: p.Root}
		if err := s.c.cfg.OnPin(s.pctx, p); err != nil {
			res.Error = err.Error()
		}
		select {
		case s.results <- res:
		case <-s.pctx.Done():
		}
	})
}

// onPlaced hands the roots placed on the node, with those ordered in this
// session, to OnPlaced, on its own goroutine.
func (s *coordSession) onPlaced(roots []string) {
	if s.c.cfg.OnPlaced == nil {
		return
	}
	listed := make(map[string]bool, len(roots))
	for _, r := range roots {
		listed[r] = true
	}
	placed := func(root string) bool {
		s.orderedMu.Lock()
		defer s.orderedMu.Unlock()
		return listed[root] || s.ordered[root]
	}
	s.pwg.Go(func() { s.c.cfg.OnPlaced(s.pctx, placed) })
}

// onUnpin hands a root no longer placed on the node to OnUnpin, on its own
// goroutine; an order for it later in the session counts again, and
// OnUnpin is told of it (ordered): the root was placed here again after
// it was unplaced, and that order's goroutine may have answered already.
func (s *coordSession) onUnpin(root string) {
	s.orderedMu.Lock()
	delete(s.ordered, root)
	s.orderedMu.Unlock()
	if s.c.cfg.OnUnpin == nil {
		return
	}
	ordered := func() bool {
		s.orderedMu.Lock()
		defer s.orderedMu.Unlock()
		return s.ordered[root]
	}
	s.pwg.Go(func() { s.c.cfg.OnUnpin(s.pctx, root, ordered) })
}

// onPayments records that the coordinator takes settlements and passes
// the state on.
func (s *coordSession) onPayments(p nodeproto.Payments) {
	s.payments = true
	if s.c.cfg.OnPayments != nil {
		s.c.cfg.OnPayments(p)
	}
}

// onSettled answers the Settle waiting for it; answers nobody waits for
// are dropped.
func (s *coordSession) onSettled(a nodeproto.Settled) {
	if r, ok := s.pending[a.ID]; ok {
		delete(s.pending, a.ID)
		r <- settleReply{s: a}
	}
}

func (s *coordSession) onReported(reasons map[string]int) {
	if s.c.cfg.OnReported != nil {
		s.c.cfg.OnReported(reasons)
	}
}

// settle sends a batch the node submits, or refuses it when the
// coordinator has not announced payments.
func (s *coordSession) settle(call settleCall) error {
	if !s.payments {
		call.reply <- settleReply{err: ErrNoPayments}
		return nil
	}
	s.settleID++
	if err := s.send(nodeproto.Message{Type: nodeproto.MsgSettle, Settle: &nodeproto.Settle{ID: s.settleID, Batch: call.batch}}); err != nil {
		call.reply <- settleReply{err: ErrSessionEnded}
		return err
	}
	s.pending[s.settleID] = call.reply
	return nil
}

// askRepair sends a repair request, or fails it when the coordinator does
// not take them.
func (s *coordSession) askRepair(call repairCall) error {
	if !s.repair {
		call.reply <- repairReply{err: ErrSessionEnded}
		return nil
	}
	s.repairID++
	if err := s.send(nodeproto.Message{Type: nodeproto.MsgRepair, Repair: &nodeproto.Repair{ID: s.repairID, CID: call.cid}}); err != nil {
		call.reply <- repairReply{err: ErrSessionEnded}
		return err
	}
	s.repairs[s.repairID] = call.reply
	return nil
}

// pinned sends a pin order's outcome, and a heartbeat at once: the node's
// status changed (blocks, free disk).
func (s *coordSession) pinned(res nodeproto.Pinned) error {
	if err := s.send(nodeproto.Message{Type: nodeproto.MsgPinned, Pinned: &res}); err != nil {
		return err
	}
	return s.heartbeat(false)
}

// heartbeat sends the node's status; with withRecord, also its record when
// that changed since it was last sent.
func (s *coordSession) heartbeat(withRecord bool) error {
	hb := s.c.cfg.Status()
	hb.Record = nil
	if withRecord {
		if cur, err := s.c.cfg.Record(); err == nil && !bytes.Equal(cur.Signature, s.lastSig) {
			hb.Record = &cur
			s.lastSig = cur.Signature
		}
	}
	return s.send(nodeproto.Message{Type: nodeproto.MsgHeartbeat, Heartbeat: &hb})
}
