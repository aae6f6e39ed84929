package coordinator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// Offers reach the node over its WebSocket and its answer, or its refusal
// with a code, comes back to RelayOffer.
func TestRelayOffer(t *testing.T) {
	e := newEnv(t, nil)
	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	nc, err := coordinator.NewNodeClient(coordinator.NodeClientConfig{
		URL: e.srv.url, Key: k.priv,
		Record: func() (noderecord.Signed, error) { return rec, nil },
		Offers: func(ctx context.Context, sdp string) (string, error) {
			switch sdp {
			case "busy":
				return "", &coordinator.OfferError{Code: coordinator.OfferCodeBusy, Message: "full"}
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
	var oe *coordinator.OfferError
	if _, err := e.coord.RelayOffer(ctx, k.id, "busy"); !errors.As(err, &oe) || oe.Code != coordinator.OfferCodeBusy || !errors.Is(err, coordinator.ErrOfferRefused) {
		t.Fatalf("busy: %v", err)
	}
	if _, err := e.coord.RelayOffer(ctx, k.id, "boom"); !errors.As(err, &oe) || oe.Code != coordinator.OfferCodeInternal {
		t.Fatalf("internal: %v", err)
	}
	if _, err := e.coord.RelayOffer(ctx, k.id, strings.Repeat("x", coordinator.MaxSDPBytes+1)); !errors.As(err, &oe) || oe.Code != coordinator.OfferCodeBadSDP {
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
