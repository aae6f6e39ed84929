package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	"github.com/multiformats/go-multihash"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/stall"
)

// A partial pin order (nodeproto.Pin.Partial) is a bucket's root: its CAR
// holds the root's directory blocks only, and the DAGs they link to (the
// bucket's objects) are placed on their own, usually on this node
// already. So the node fetches the directory blocks (without those of
// p.Base, a previous root it holds, when the order names one: only the
// blocks a change made move), then walks the whole DAG and fetches each
// sub-DAG it lacks from the same gateway as a whole CAR
// ("<cid>.car", checked as a deploy's is). The pin is recorded only once
// every block of the DAG is stored.

// maxPartialRounds bounds the walks: the first finds the missing
// sub-DAGs, the second checks they arrived.
const maxPartialRounds = 2

// fetchPartial is fetchPin for a partial order from its gateway CAR.
func (n *Node) fetchPartial(ctx context.Context, root cid.Cid, p nodeproto.Pin) (_ *importRun, err error) {
	dir, ok := strings.CutSuffix(p.CAR, root.String()+".car")
	if !ok {
		return nil, fmt.Errorf("%w: a partial pin's CAR must be <root>.car: %q", ErrBadCAR, p.CAR)
	}
	run := n.newImportRun()
	defer func() {
		if err != nil {
			// Refused whole: what the run stored goes (a failed
			// fetch of a sub-DAG undid nothing yet).
			removed, uerr := run.undo(ctx)
			n.metrics.addBlocks(-removed)
			if uerr != nil {
				n.log.Error("removing the blocks of a refused pin failed; the next start collects them", "err", uerr)
			}
			run.release()
		}
	}()
	src := p.CAR
	if p.Base != "" && n.holds(p.Base) {
		src += "?base=" + url.QueryEscape(p.Base)
	}
	if err := n.importSigned(ctx, run, src, root, cid.Undef); err != nil {
		if src == p.CAR {
			return nil, err
		}
		// The base may be one the gateway no longer keeps: ask for all.
		n.log.Warn("partial pin without its base", "root", root, "base", p.Base, "err", err)
		if err := n.importSigned(ctx, run, p.CAR, root, cid.Undef); err != nil {
			return nil, err
		}
	}
	for round := 0; ; round++ {
		missing, err := n.missing(ctx, root, walkOpts{run: run})
		if err != nil {
			_, _ = run.undo(ctx)
			return nil, err
		}
		if len(missing) == 0 {
			return run, nil
		}
		if round+1 >= maxPartialRounds {
			_, _ = run.undo(ctx)
			return nil, fmt.Errorf("%w: %d blocks of %s still missing, %s first", ErrBadCAR, len(missing), root, missing[0])
		}
		for _, c := range missing {
			if err := n.importSigned(ctx, run, dir+c.String()+".car", c, c); err != nil {
				return nil, fmt.Errorf("sub-DAG %s: %w", c, err)
			}
		}
	}
}

// importSigned imports the CAR at src (a GET signed with the node key)
// into run: its only root must be root, and with whole defined it must be
// exactly whole's DAG. A refused CAR undoes the run.
func (n *Node) importSigned(ctx context.Context, run *importRun, src string, root, whole cid.Cid) error {
	client := n.cfg.CoordinatorClient
	if client == nil {
		client = http.DefaultClient
	}
	ctx, guard := stall.Watch(ctx, n.cfg.PinSourceStall, stallMin, errHolderStalled) // as fetchPin's
	defer guard.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	nodeproto.SignContentRequest(req, n.priv, n.cfg.Now())
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch: %w", guard.Err(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxPinError))
		return fmt.Errorf("fetch: %s: %s", resp.Status, msg)
	}
	roots, err := n.importCAR(ctx, run, guard.Reader(counted{resp.Body, n.metrics.pinFetched}), cid.Undef, whole)
	if err != nil {
		return guard.Err(err)
	}
	if len(roots) != 1 || !roots[0].Equals(root) {
		_, _ = run.undo(ctx)
		return fmt.Errorf("%w: the CAR's roots are %v, want %s", ErrBadCAR, roots, root)
	}
	return nil
}

// holds reports whether root is pinned here (placed or local).
func (n *Node) holds(root string) bool {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	return n.pins[root] || n.localPins[root]
}

// walkOpts are missing's variants.
type walkOpts struct {
	// run, when set, claims each block before it is looked for, so an
	// import refused meanwhile keeps it (importRun.undo).
	run *importRun
	// check reads every block, leaves too, so a block corrupt on disk is
	// found (the store re-hashes what it reads); a corrupt block is
	// deleted and counted missing, to be fetched again. Without it, leaves
	// are only looked up.
	check bool
	// intoPinned walks the DAGs of other pinned roots below root too;
	// without it they are taken as whole.
	intoPinned bool
	// uncached reads the blocks without the check and the memory of
	// small blocks: an import's walk of the blocks it just verified.
	uncached bool
}

// missing walks root's DAG and returns the roots of the sub-DAGs it
// lacks: blocks not stored (or, with o.check, corrupt), each below a
// stored block.
func (n *Node) missing(ctx context.Context, root cid.Cid, o walkOpts) ([]cid.Cid, error) {
	if o.check {
		ctx = fromDisk(ctx) // not the copies the store keeps in memory
	}
	var out []cid.Cid
	seen := map[string]bool{}
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		k := string(c.Hash())
		if seen[k] || c.Prefix().MhType == multihash.IDENTITY {
			continue
		}
		seen[k] = true
		if o.run != nil {
			o.run.claim(c.Hash())
		}
		if !o.intoPinned && !c.Equals(root) && n.holds(c.String()) {
			continue
		}
		if c.Prefix().Codec != cid.DagProtobuf && !o.check {
			has, err := n.bs.Has(ctx, c)
			if err != nil {
				return nil, fmt.Errorf("node: walk %s: %w", c, err)
			}
			if !has {
				out = append(out, c)
			}
			continue
		}
		get := n.bs.Get
		if o.uncached {
			get = n.checked.Blockstore.Get
		}
		blk, err := get(ctx, c)
		if o.check && errors.Is(err, ErrCorruptBlock) {
			// The store keeps a block file of the right size when the
			// block is written again: the damaged one goes first.
			n.log.Warn("a pinned root's block is corrupt: fetching it again", "root", root, "cid", c)
			if err := n.bs.DeleteBlock(ctx, c); err != nil {
				return nil, fmt.Errorf("node: walk %s: %w", c, err)
			}
			n.metrics.addBlocks(-1) // counted again when it is written
			out = append(out, c)
			continue
		}
		if ipld.IsNotFound(err) || errors.Is(err, ipld.ErrNotFound{Cid: c}) {
			out = append(out, c)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("node: walk %s: %w", c, err)
		}
		if c.Prefix().Codec != cid.DagProtobuf {
			continue
		}
		nd, err := merkledag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadCAR, c, err)
		}
		for _, l := range nd.Links() {
			stack = append(stack, l.Cid)
		}
	}
	return out, nil
}
