package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
)

// Block repair: a block that fails its hash check when read is queued
// here; repairLoop asks the coordinator for other holders
// (CoordClient.RepairSources), fetches it again from them, verified, and
// replaces the corrupt copy with it, counting
// verity_node_block_repairs_total. Without a coordinator session, or when
// no holder has it, the block stays missing until the next pin order.

// repairQueueSize bounds the corrupt blocks waiting for repair; more are
// dropped (and found again on their next read).
const repairQueueSize = 64

// repairTimeout bounds the repair of one block.
const repairTimeout = time.Minute

// queueRepair queues c for repair unless it is queued already. It never
// blocks: it is called from blockstore reads.
func (n *Node) queueRepair(c cid.Cid) {
	n.repairMu.Lock()
	defer n.repairMu.Unlock()
	if n.repairing[c] {
		return
	}
	select {
	case n.repairQ <- c:
		n.repairing[c] = true
	default:
	}
}

// repairLoop repairs queued blocks until ctx ends.
func (n *Node) repairLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-n.repairQ:
			rctx, cancel := context.WithTimeout(ctx, repairTimeout)
			if err := n.repairBlock(rctx, c); err != nil && ctx.Err() == nil {
				n.log.Warn("corrupt block not repaired", "cid", c.String(), "err", err)
			}
			cancel()
			n.repairMu.Lock()
			delete(n.repairing, c)
			n.repairMu.Unlock()
		}
	}
}

// repairBlock fetches c from the holders the coordinator names and, once
// it verifies, replaces the corrupt copy with it.
func (n *Node) repairBlock(ctx context.Context, c cid.Cid) error {
	n.mu.Lock()
	nc := n.coord
	n.mu.Unlock()
	if nc == nil {
		return ErrNoCoordinator
	}
	sources, grant, err := nc.RepairSources(ctx, c.String())
	if err != nil {
		return fmt.Errorf("asking the coordinator for sources: %w", err)
	}
	if len(sources) == 0 {
		return fmt.Errorf("no other holder is live")
	}
	client := &http.Client{Timeout: repairTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	var errs []string
	for _, src := range sources {
		data, err := n.fetchRawBlock(ctx, client, strings.TrimRight(src, "/"), c, grant)
		if err != nil {
			errs = append(errs, src+": "+err.Error())
			continue
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err != nil {
			return err
		}
		sd, err := n.openStoreSync() // before the write: see openStoreSync
		if err != nil {
			return err
		}
		defer sd.Close()
		// The store skips a Put of a key it has: drop the corrupt copy.
		if err := n.bs.DeleteBlock(ctx, c); err != nil {
			return fmt.Errorf("dropping the corrupt copy: %w", err)
		}
		if err := n.bs.Put(ctx, blk); err != nil {
			return fmt.Errorf("storing the repaired block: %w", err)
		}
		if p, err := n.BlockPath(c); err == nil {
			if err := n.syncStore(sd, []string{p}); err != nil {
				return fmt.Errorf("syncing the repaired block: %w", err)
			}
		}
		n.metrics.blockRepairs.Inc()
		n.log.Info("corrupt block repaired", "cid", c.String(), "source", src)
		return nil
	}
	return fmt.Errorf("every source failed: %s", strings.Join(errs, "; "))
}

// fetchRawBlock gets c from a node's trustless gateway at base and checks
// it against c. The request is signed with the node key and carries the
// coordinator's grant, which a node that requires payment asks for.
func (n *Node) fetchRawBlock(ctx context.Context, client *http.Client, base string, c cid.Cid, grant string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ipfs/"+c.String()+"?format=raw", nil)
	if err != nil {
		return nil, err
	}
	n.signForHolder(req, grant)
	req.Header.Set("Accept", "application/vnd.ipld.raw")
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("answered %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, int64(n.cfg.MaxBlockSize)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > n.cfg.MaxBlockSize {
		return nil, fmt.Errorf("block over %d bytes", n.cfg.MaxBlockSize)
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil || !sum.Equals(c) {
		return nil, fmt.Errorf("the block does not match its CID")
	}
	return data, nil
}
