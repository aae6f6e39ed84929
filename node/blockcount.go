package node

import (
	"context"
	"time"

	"github.com/ipfs/boxo/blockstore"
)

// The blocks gauge (verity_node_blocks_stored, Heartbeat.Blocks) starts at
// zero and the store is counted in the background, so start-up does not
// grow with the store. Writes that change the count (imports, garbage
// collection) wait for the count to finish (they hold countMu for
// reading, the count holds it for writing from New on), so no block is
// counted twice or missed. Serving and joining do not wait.

// startBlockCount takes countMu and counts the store on a goroutine owned
// by n.wg, which releases it when done. Called last in New.
func (n *Node) startBlockCount() {
	n.countMu.Lock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.countMu.Unlock()
		start := time.Now()
		count, err := countBlocks(n.ctx, n.bs)
		if err != nil || n.ctx.Err() != nil {
			if n.ctx.Err() == nil {
				n.log.Error("counting stored blocks failed; the blocks gauge counts changes only", "err", err)
			}
			return
		}
		n.metrics.addBlocks(count)
		n.blocksCounted.Store(true)
		n.log.Info("counted stored blocks", "blocks", count, "took", time.Since(start).Round(time.Millisecond))
	}()
}

// BlocksCounted reports whether the background count of stored blocks is
// done, so that the blocks gauge counts every block.
func (n *Node) BlocksCounted() bool { return n.blocksCounted.Load() }

// countBlocks counts the blocks in the store.
func countBlocks(ctx context.Context, bs blockstore.Blockstore) (int, error) {
	ch, err := bs.AllKeysChan(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for range ch {
		n++
	}
	return n, nil
}
