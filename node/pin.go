package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// pinsFile lists the roots the node keeps:
// {"roots": [...placed by the coordinator], "local": [...imported by the operator]}.
const pinsFile = "pins.json"

// maxPinError bounds the error text sent back for a failed pin order.
const maxPinError = 300

type pinsJSON struct {
	Roots []string `json:"roots"`           // placed by the coordinator
	Local []string `json:"local,omitempty"` // pinned by the operator (--car)
}

// Pins returns the roots the coordinator placed here and the node holds,
// sorted.
func (n *Node) Pins() []string {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	return slices.Sorted(maps.Keys(n.pins))
}

func (n *Node) loadPins() error {
	n.pins, n.localPins = make(map[string]bool), make(map[string]bool)
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, pinsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: pins: %w", err)
	}
	var v pinsJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("node: pins: %s: %w", pinsFile, err)
	}
	for _, r := range v.Roots {
		n.pins[r] = true
	}
	for _, r := range v.Local {
		n.localPins[r] = true
	}
	return nil
}

// savePins writes the pin sets; pinMu is held.
func (n *Node) savePins() error {
	b, err := json.Marshal(pinsJSON{Roots: slices.Sorted(maps.Keys(n.pins)), Local: slices.Sorted(maps.Keys(n.localPins))})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, pinsFile), b, 0o600); err != nil {
		return fmt.Errorf("node: pins: %w", err)
	}
	return nil
}

// addPin records root as pinned (placed, or local), durably.
func (n *Node) addPin(root string, local bool) error {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	set := n.pins
	if local {
		set = n.localPins
	}
	if set[root] {
		return nil
	}
	set[root] = true
	if err := n.savePins(); err != nil {
		delete(set, root)
		return err
	}
	n.pinSeq.Add(1)
	return nil
}

// PinLocal keeps roots whatever the coordinator places here: content the
// operator imported (verity node --car) is never garbage-collected.
func (n *Node) PinLocal(roots ...cid.Cid) error {
	for _, r := range roots {
		if err := n.addPin(r.String(), true); err != nil {
			return err
		}
	}
	return nil
}

// Pin fetches the CAR of a pin order from p.CAR (a GET signed with the
// node key) or, when that fails, from each of p.Sources in turn (other
// holders), verifies and stores every block (ImportCAR), checks the whole
// DAG is stored and records p.Root as pinned. A root already pinned is not
// fetched again, unless the order asks for a check (p.Check): then every
// block of its DAG is read, and a missing or corrupt one has the root
// fetched again.
func (n *Node) Pin(ctx context.Context, p nodeproto.Pin) error {
	root, err := cid.Parse(p.Root)
	if err != nil {
		return fmt.Errorf("%w: pin root %q: %v", ErrBadCAR, p.Root, err)
	}
	// Collection waits for imports: their blocks are not pinned yet.
	n.gcMu.RLock()
	defer n.gcMu.RUnlock()
	n.pinMu.Lock()
	have := n.pins[root.String()]
	n.pinMu.Unlock()
	var checked *importRun // the check's claims, released once answered
	defer func() { checked.release() }()
	if have {
		if !p.Check {
			return nil
		}
		// Every block read (and so re-hashed), claimed as it is walked,
		// so an import refused meanwhile does not take back a block this
		// check found. A partial root's objects are pinned, and checked,
		// on their own.
		checked = n.newImportRun()
		missing, err := n.missing(ctx, root, walkOpts{run: checked, check: true, intoPinned: !p.Partial})
		if err != nil {
			return fmt.Errorf("node: pin %s: %w", root, err)
		}
		if len(missing) == 0 {
			// An import begun before this check undoes against the pins
			// again (importRun.undo), which reach what was found.
			n.pinSeq.Add(1)
			return nil
		}
		n.log.Warn("a pinned root lacks blocks: fetching it again", "root", root, "missing", len(missing), "first", missing[0])
	}
	if c := n.cfg.Capacity; c > 0 {
		if stored := n.storedBytes(); stored >= c {
			return fmt.Errorf("node: pin %s: %w: %d of %d bytes stored", root, ErrStorageFull, stored, c)
		}
	}
	var errs []error
	var run *importRun // released once the pin is recorded
	defer func() { run.release() }()
	for i, src := range pinSources(p) {
		var err error
		if i == 0 && src == p.CAR && p.Partial {
			run, err = n.fetchPartial(ctx, root, p)
		} else {
			run, err = n.fetchPin(ctx, root, src, i == 0 && src == p.CAR, p.Grant)
		}
		if err == nil {
			errs = nil
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("node: pin %s: %w", root, ctx.Err())
		}
		n.log.Warn("pin source failed", "root", root, "source", src, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", src, err))
	}
	if len(pinSources(p)) == 0 {
		errs = append(errs, errNoPinSource)
	}
	if len(errs) > 0 {
		return fmt.Errorf("node: pin %s: %w", root, errors.Join(errs...))
	}
	if err := n.addPin(root.String(), false); err != nil {
		return err
	}
	if have {
		n.pinSeq.Add(1) // recorded already: addPin did not count it
	}
	n.log.Info("pinned", "root", root, "site", p.Site)
	return nil
}

// Reconcile drops the placed pins whose roots placed rejects (it reports
// whether the coordinator places a root on this node), then collects
// garbage. Local pins are kept. placed is asked with the pins held and no
// pin being imported, so a pin ordered meanwhile is either asked about or
// not yet begun.
func (n *Node) Reconcile(ctx context.Context, placed func(root string) bool) (unpinned, removed int, err error) {
	n.gcMu.Lock()
	defer n.gcMu.Unlock()
	n.pinMu.Lock()
	var dropped []string
	for r := range n.pins {
		if !placed(r) {
			dropped = append(dropped, r)
			delete(n.pins, r)
		}
	}
	if len(dropped) > 0 {
		if err := n.savePins(); err != nil {
			for _, r := range dropped {
				n.pins[r] = true
			}
			n.pinMu.Unlock()
			return 0, 0, err
		}
	}
	n.pinMu.Unlock()
	if len(dropped) > 0 {
		n.log.Info("unpinned roots no longer placed here", "roots", dropped)
	}
	removed, err = n.collect(ctx)
	return len(dropped), removed, err
}

// Unpin drops the placed pin of root (a local pin stays) and collects the
// blocks no other pin reaches; it returns how many blocks it deleted.
// Unpinning a root not pinned changes nothing.
func (n *Node) Unpin(ctx context.Context, root string) (removed int, err error) {
	return n.UnpinUnless(ctx, root, nil)
}

// UnpinUnless is Unpin, unless keep (when set) reports true, asked with
// no import under way and the pins held: the coordinator's unpin of a
// root it then placed here again (a collected root a store placed again)
// whose pin order, handled on a goroutine of its own, may have found the
// root still pinned and answered pinned before this runs. Unpinning then
// would leave the coordinator counting a holder that holds nothing.
func (n *Node) UnpinUnless(ctx context.Context, root string, keep func() bool) (removed int, err error) {
	n.gcMu.Lock()
	defer n.gcMu.Unlock()
	n.pinMu.Lock()
	if !n.pins[root] {
		n.pinMu.Unlock()
		return 0, nil
	}
	if keep != nil && keep() {
		n.pinMu.Unlock()
		n.log.Info("unpin of a root placed here again since: kept", "root", root)
		return 0, nil
	}
	delete(n.pins, root)
	if err := n.savePins(); err != nil {
		n.pins[root] = true
		n.pinMu.Unlock()
		return 0, err
	}
	n.pinMu.Unlock()
	n.log.Info("unpinned a root no longer placed here", "root", root)
	return n.collect(ctx)
}

// GC deletes every stored block not reachable from a pinned root (placed or
// local) and returns how many it deleted. Any error while walking the
// pinned DAGs (a missing or corrupt block) aborts it before anything is
// deleted.
func (n *Node) GC(ctx context.Context) (int, error) {
	n.gcMu.Lock()
	defer n.gcMu.Unlock()
	return n.collect(ctx)
}

// collect is GC with gcMu held.
func (n *Node) collect(ctx context.Context) (int, error) {
	n.countMu.RLock() // after the background count (blockcount.go)
	defer n.countMu.RUnlock()
	live, err := n.liveSet(ctx)
	if err != nil {
		return 0, err
	}
	keys, err := n.bs.AllKeysChan(ctx)
	if err != nil {
		return 0, fmt.Errorf("node: gc: %w", err)
	}
	var dead []cid.Cid
	for c := range keys {
		if !live[string(c.Hash())] {
			dead = append(dead, c)
		}
	}
	removed := 0
	for _, c := range dead {
		if err := n.bs.DeleteBlock(ctx, c); err != nil {
			n.metrics.addBlocks(-removed)
			return removed, fmt.Errorf("node: gc: delete %s: %w", c, err)
		}
		removed++
	}
	n.metrics.addBlocks(-removed)
	if removed > 0 {
		n.log.Info("garbage collected", "blocks", removed)
	}
	return removed, nil
}

// liveSet walks the pinned DAGs (placed and local) and returns their
// blocks, by multihash (the store is keyed by it). Any block missing or
// corrupt on the way is an error.
func (n *Node) liveSet(ctx context.Context) (map[string]bool, error) {
	n.pinMu.Lock()
	roots := append(slices.Collect(maps.Keys(n.pins)), slices.Collect(maps.Keys(n.localPins))...)
	n.pinMu.Unlock()
	live := make(map[string]bool) // by multihash: the store is keyed by it
	var stack []cid.Cid
	for _, r := range roots {
		c, err := cid.Parse(r)
		if err != nil {
			return nil, fmt.Errorf("node: gc: pinned root %q: %w", r, err)
		}
		stack = append(stack, c)
	}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if live[string(c.Hash())] {
			continue
		}
		live[string(c.Hash())] = true
		if c.Prefix().Codec != cid.DagProtobuf {
			continue
		}
		blk, err := n.bs.Get(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("node: gc: walking %s: %w", c, err)
		}
		nd, err := merkledag.DecodeProtobuf(blk.RawData())
		if err != nil {
			return nil, fmt.Errorf("node: gc: %s: %w", c, err)
		}
		for _, l := range nd.Links() {
			if l.Cid.Prefix().MhType != 0x00 { // identity CIDs hold their bytes
				stack = append(stack, l.Cid)
			}
		}
	}
	return live, nil
}
