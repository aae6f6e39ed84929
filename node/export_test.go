package node

import (
	"log/slog"

	"github.com/ipfs/go-cid"
)

// Rotate runs a certificate rotation now.
func (n *Node) Rotate() error { return n.rotate() }

// WebRTCPeers is the number of open WebRTC peer connections.
func (n *Node) WebRTCPeers() int {
	if n.rtc == nil {
		return 0
	}
	n.rtc.mu.Lock()
	defer n.rtc.mu.Unlock()
	return len(n.rtc.peers)
}

// LogForTest is the node's logger (what its parts log through).
func (n *Node) LogForTest() *slog.Logger { return n.log }

// SetImportBatchBytes sets how much an import queues before it writes
// (16 MiB), so a test sees blocks stored while a small CAR streams in.
func SetImportBatchBytes(b int) { batchBytes = b }

// ClaimsForTest is how many import runs under way claim the block c.
func (n *Node) ClaimsForTest(c cid.Cid) int {
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	return n.claims[string(c.Hash())]
}
