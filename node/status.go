package node

import (
	"context"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// Status is the node's current report to the coordinator: storage offered
// and free, blocks stored, load and version, and the receipts it holds
// unsettled.
func (n *Node) Status() nodeproto.Heartbeat {
	total, free := diskSpace(n.cfg.DataDir)
	capacity := n.cfg.Capacity
	if capacity <= 0 {
		capacity = total
	}
	load := float64(n.metrics.inflight.Load()) / float64(n.cfg.LoadCapacity)
	hb := nodeproto.Heartbeat{
		Capacity: capacity,
		FreeDisk: free,
		Blocks:   n.metrics.blocks.Load(),
		Stored:   n.storedBytes(),
		Load:     min(max(load, 0), 1),
		Version:  n.cfg.Version,
		Region:   n.cfg.Region,
	}
	if n.pay != nil {
		st := n.pay.receiptsStatus()
		hb.Receipts = (&nodeproto.PendingReceipts{Sessions: st.Sessions, Bytes: st.PendingBytes, ByAccount: st.PendingBy}).Bounded()
	}
	return hb
}

// CoordinatorState reports the node's session with Config.Coordinator;
// ok is false when the node has no coordinator or is not running.
func (n *Node) CoordinatorState() (st CoordClientState, ok bool) {
	n.mu.Lock()
	nc := n.coord
	n.mu.Unlock()
	if nc == nil {
		return st, false
	}
	return nc.State(), true
}

// joinCoordinator starts the client that keeps the node joined to
// Config.Coordinator; nil without one.
func (n *Node) joinCoordinator() (*CoordClient, error) {
	if n.cfg.Coordinator == "" {
		return nil, nil
	}
	return NewCoordClient(CoordClientConfig{
		URL:           n.cfg.Coordinator,
		Key:           n.priv,
		OperatorToken: n.cfg.OperatorToken,
		Record:        func() (noderecord.Signed, error) { return n.Record(), nil },
		Status:        n.Status,
		OnPin:         n.Pin,
		OnPlaced: func(ctx context.Context, placed func(string) bool) {
			if _, _, err := n.Reconcile(ctx, placed); err != nil && ctx.Err() == nil {
				n.log.Warn("reconciling pins with the coordinator failed", "err", err)
			}
		},
		OnUnpin: func(ctx context.Context, root string, ordered func() bool) {
			unpin := func() {
				if _, err := n.UnpinUnless(ctx, root, ordered); err != nil && ctx.Err() == nil {
					n.log.Warn("unpinning a root no longer placed here failed", "root", root, "err", err)
				}
			}
			n.pinMu.Lock()
			hook := n.unpinHook
			n.pinMu.Unlock()
			if hook != nil {
				hook(root, unpin)
				return
			}
			unpin()
		},
		OnReported: func(reasons map[string]int) {
			for reason, count := range reasons {
				if !knownReportReason(reason) {
					reason = "other"
				}
				n.metrics.reported.WithLabelValues(reason).Add(float64(count))
			}
		},
		OnPayments: n.pay.onPayments,
		Offers:     n.relayedOffer(),
		HTTPClient: n.cfg.CoordinatorClient,
		Logger:     n.log,
	})
}

// knownReportReason bounds the reason label of verity_node_reported_failures_total.
func knownReportReason(r string) bool {
	switch r {
	case "bad-block", "unreachable", "timeout", "protocol":
		return true
	}
	return false
}

// storedBytes is the size of the blockstore on disk (flatfs keeps it
// current as blocks come and go, with what imports wrote themselves
// added), 0 when unknown.
func (n *Node) storedBytes() int64 {
	if n.ds == nil {
		return 0
	}
	b, err := n.ds.DiskUsage(context.Background())
	if err != nil {
		return 0
	}
	// flatfs counts what it wrote, less every file it deleted; files
	// imports wrote themselves are counted apart (blockfile.go).
	return int64(b) + n.files.extra.Load()
}
