package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// Offers reach the node over its WebSocket and its answer, or its refusal
// with a code, comes back to RelayOffer.
func TestRelayOffer(t *testing.T) {
	e := newEnv(t, nil)
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		Offers: func(ctx context.Context, sdp string) (string, error) {
			switch sdp {
			case "busy":
				return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBusy, Message: "full"}
			case "boom":
				return "", errors.New("something internal")
			case "slow":
				<-ctx.Done()
				return "", ctx.Err()
			}
			return "answer to " + sdp, nil
		},
		MinBackoff: 10 * time.Millisecond,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "join", func() bool { return nc.State().Joined })

	ctx := ctxT(t)
	if got, err := e.coord.RelayOffer(ctx, k.id, "offer"); err != nil || got != "answer to offer" {
		t.Fatalf("relay: %q, %v", got, err)
	}
	var oe *nodeproto.OfferError
	if _, err := e.coord.RelayOffer(ctx, k.id, "busy"); !errors.As(err, &oe) || oe.Code != nodeproto.OfferCodeBusy || !errors.Is(err, nodeproto.ErrOfferRefused) {
		t.Fatalf("busy: %v", err)
	}
	if _, err := e.coord.RelayOffer(ctx, k.id, "boom"); !errors.As(err, &oe) || oe.Code != nodeproto.OfferCodeInternal {
		t.Fatalf("internal: %v", err)
	}
	if _, err := e.coord.RelayOffer(ctx, k.id, strings.Repeat("x", nodeproto.MaxSDPBytes+1)); !errors.As(err, &oe) || oe.Code != nodeproto.OfferCodeBadSDP {
		t.Fatalf("oversized: %v", err)
	}
	if _, err := e.coord.RelayOffer(ctx, "nunknown", "offer"); !errors.Is(err, coordinator.ErrUnknownNode) {
		t.Fatalf("unknown node: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.coord.RelayOffer(short, k.id, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow node: %v", err)
	}
	// A known node with no session here is unreachable, not unknown.
	nc.Close()
	eventually(t, "session gone", func() bool {
		_, err := e.coord.RelayOffer(ctx, k.id, "offer")
		return errors.Is(err, coordinator.ErrNodeUnreachable)
	})
}

// Two coordinators share one bus: an offer taken by A for a node joined to
// B is relayed to B over NATS and comes back with the node's answer; B's
// node's refusals and timeouts keep their errors; once B is gone the node
// is unreachable from A, not unknown.
func TestRelayOfferBetweenCoordinators(t *testing.T) {
	bus := openBus(t)
	srvA, srvB := startServer(t), startServer(t)
	a := newCoordinator(t, bus, nil)
	b := newCoordinator(t, bus, nil)
	srvA.cur.Store(a)
	srvB.cur.Store(b)

	k := newKey(t)
	rec := signedRecord(t, k, 4101)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: srvB.url, Key: k.priv, OperatorToken: operatorToken(bus),
		Record: func() (noderecord.Signed, error) { return rec, nil },
		Offers: func(ctx context.Context, sdp string) (string, error) {
			switch sdp {
			case "busy":
				return "", &nodeproto.OfferError{Code: nodeproto.OfferCodeBusy, Message: "full"}
			case "slow":
				<-ctx.Done()
				return "", ctx.Err()
			}
			return "answer from B's node to " + sdp, nil
		},
		MinBackoff: 10 * time.Millisecond,
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "join on B", func() bool { return nc.State().Joined })
	eventually(t, "A sees the node live on B", func() bool {
		s, ok := stateOf(t, a, k.id)
		return ok && s.State == coordinator.StateLive && s.Coordinator == b.ID()
	})

	ctx := ctxT(t)
	if got, err := a.RelayOffer(ctx, k.id, "offer"); err != nil || got != "answer from B's node to offer" {
		t.Fatalf("relay through A: %q, %v", got, err)
	}
	var oe *nodeproto.OfferError
	if _, err := a.RelayOffer(ctx, k.id, "busy"); !errors.As(err, &oe) || oe.Code != nodeproto.OfferCodeBusy || !errors.Is(err, nodeproto.ErrOfferRefused) {
		t.Fatalf("busy through A: %v", err)
	}
	if _, err := a.RelayOffer(ctx, k.id, strings.Repeat("x", nodeproto.MaxSDPBytes+1)); !errors.As(err, &oe) || oe.Code != nodeproto.OfferCodeBadSDP {
		t.Fatalf("oversized through A: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := a.RelayOffer(short, k.id, "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow node through A: %v", err)
	}
	if _, err := a.RelayOffer(ctx, "nunknown", "offer"); !errors.Is(err, coordinator.ErrUnknownNode) {
		t.Fatalf("unknown node through A: %v", err)
	}

	// B stops taking offers (closed; its node has not rejoined yet): A
	// answers unreachable, whatever the node state still says.
	srvB.cur.Store(nil)
	b.Close()
	if _, err := a.RelayOffer(ctx, k.id, "offer"); !errors.Is(err, coordinator.ErrNodeUnreachable) {
		t.Fatalf("after B closed: %v", err)
	}
}

// A node reads its welcome first: an offer relayed while the coordinator
// is still admitting the node (listed already, not yet welcomed) waits for
// the welcome instead of going out first and ending the node's session.
func TestOfferDuringJoinWaitsForWelcome(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 10 {
		k := newKey(t)
		r := dialRaw(t, e.wsURL())
		ctx, cancel := context.WithCancel(ctxT(t))
		relayed := make(chan error, 1)
		go func() {
			// Offer as soon as the coordinator has a session for the node.
			for {
				octx, ocancel := context.WithTimeout(ctx, 50*time.Millisecond)
				_, err := e.coord.RelayOffer(octx, k.id, "v=0")
				ocancel()
				if ctx.Err() != nil || (!errors.Is(err, coordinator.ErrUnknownNode) && !errors.Is(err, coordinator.ErrNodeUnreachable)) {
					relayed <- err
					return
				}
			}
		}()
		r.send(joinFor(r.ch, k, signedRecord(t, k, 4100+i)))
		if m := r.read(); m.Type != nodeproto.MsgWelcome {
			t.Fatalf("join %d: first message after the join is %q, want %q", i, m.Type, nodeproto.MsgWelcome)
		}
		<-relayed
		cancel()
		r.ws.CloseNow()
	}
}
