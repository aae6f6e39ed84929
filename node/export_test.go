package node

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/wire"
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
// (4 MiB), so a test sees blocks stored while a small CAR streams in.
func SetImportBatchBytes(b int) { batchBytes = b }

// ClaimsForTest is how many import runs under way claim the block c.
func (n *Node) ClaimsForTest(c cid.Cid) int {
	n.claimMu.Lock()
	defer n.claimMu.Unlock()
	return n.claims[string(c.Hash())]
}

// SetUnpinHook makes the node's unpin of a root the coordinator no longer
// places go through f, which runs unpin (the node's own handling) when it
// chooses: a test orders it against other messages of the session.
func (n *Node) SetUnpinHook(f func(root string, unpin func())) {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	n.unpinHook = f
}

// Block files imports write themselves (blockfile.go).
var (
	LinkNoReplace = linkNoReplace
	AddDiskUsage  = addDiskUsage
)

// CreateLinked writes data into a new file in tmpDir and names it path
// unless path exists, as an import does.
func CreateLinked(tmpDir, path string, data []byte) (bool, error) {
	return new(blockFiles).createLinked(tmpDir, path, data)
}

// BlockBufferForTest is an n-byte buffer from an import's pool.
func BlockBufferForTest(n int) []byte { return new(blockBuffers).get(n) }

// TempFileWriter writes block files' temporary files as an import does.
type TempFileWriter struct{ b *blockFiles }

// NewTempFileWriterForTest returns a writer of its own; with refuseDirect
// every open with O_DIRECT fails with EINVAL, as on a filesystem that
// refuses it.
func NewTempFileWriterForTest(refuseDirect bool) *TempFileWriter {
	b := new(blockFiles)
	if refuseDirect {
		b.open = refuseDirectOpen
	}
	return &TempFileWriter{b: b}
}

// Write writes data into a new file in dir and returns its path.
func (w *TempFileWriter) Write(dir string, data []byte) (string, error) {
	return w.b.writeTemp(dir, data)
}

// Direct reports whether the writer still writes with O_DIRECT.
func (w *TempFileWriter) Direct() bool { return !w.b.noDirect.Load() }

// DirectRefusals is how often the filesystem refused O_DIRECT.
func (w *TempFileWriter) DirectRefusals() int { return int(w.b.refusals.Load()) }

// SetBeforeSyncHook has each import call f with the files it is about to
// sync, before its sync (which an empty list skips).
func (n *Node) SetBeforeSyncHook(f func(paths []string)) { n.beforeSync = f }

// ServeForTest serves r through the handler the streams share.
func (n *Node) ServeForTest(w http.ResponseWriter, r *http.Request) { n.handler.ServeHTTP(w, r) }

// OutboardsForTest returns ctx carrying outboards for a bao16 response,
// and a function giving the outboards kept and not taken, by digest.
func OutboardsForTest(ctx context.Context) (context.Context, func() map[string][]byte) {
	ctx, o := outboardsFor(ctx, wire.BlocksBao16)
	return ctx, func() map[string][]byte {
		o.mu.Lock()
		defer o.mu.Unlock()
		kept := map[string][]byte{}
		for _, e := range o.ents {
			if e.ob != nil {
				kept[e.digest] = e.ob
			}
		}
		return kept
	}
}
