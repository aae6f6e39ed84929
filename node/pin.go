package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/coordinator"
)

// pinsFile lists the roots the node keeps (JSON {"roots": [...]}).
const pinsFile = "pins.json"

// maxPinError bounds the error text sent back for a failed pin order.
const maxPinError = 300

// Pins returns the roots the node keeps pinned, sorted.
func (n *Node) Pins() []string {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	return slices.Sorted(func(yield func(string) bool) {
		for r := range n.pins {
			if !yield(r) {
				return
			}
		}
	})
}

func (n *Node) loadPins() error {
	n.pins = make(map[string]bool)
	b, err := os.ReadFile(filepath.Join(n.cfg.DataDir, pinsFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("node: pins: %w", err)
	}
	var v struct {
		Roots []string `json:"roots"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("node: pins: %s: %w", pinsFile, err)
	}
	for _, r := range v.Roots {
		n.pins[r] = true
	}
	return nil
}

// addPin records root as pinned, durably.
func (n *Node) addPin(root string) error {
	n.pinMu.Lock()
	defer n.pinMu.Unlock()
	if n.pins[root] {
		return nil
	}
	roots := append(slices.Collect(func(yield func(string) bool) {
		for r := range n.pins {
			if !yield(r) {
				return
			}
		}
	}), root)
	slices.Sort(roots)
	b, err := json.Marshal(struct {
		Roots []string `json:"roots"`
	}{roots})
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(n.cfg.DataDir, pinsFile), b, 0o600); err != nil {
		return fmt.Errorf("node: pins: %w", err)
	}
	n.pins[root] = true
	return nil
}

// Pin fetches the CAR of a pin order from p.CAR (a GET signed with the
// node key), verifies and stores every block (ImportCAR) and records
// p.Root as pinned. A root already pinned is not fetched again.
func (n *Node) Pin(ctx context.Context, p coordinator.Pin) error {
	root, err := cid.Parse(p.Root)
	if err != nil {
		return fmt.Errorf("%w: pin root %q: %v", ErrBadCAR, p.Root, err)
	}
	n.pinMu.Lock()
	have := n.pins[root.String()]
	n.pinMu.Unlock()
	if have {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.CAR, nil)
	if err != nil {
		return fmt.Errorf("node: pin %s: %w", root, err)
	}
	coordinator.SignContentRequest(req, n.priv, n.cfg.Now())
	client := n.cfg.CoordinatorClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("node: pin %s: fetch: %w", root, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxPinError))
		return fmt.Errorf("node: pin %s: fetch: %s: %s", root, resp.Status, msg)
	}
	roots, err := n.ImportCAR(ctx, resp.Body)
	if err != nil {
		return fmt.Errorf("node: pin %s: %w", root, err)
	}
	if len(roots) != 1 || !roots[0].Equals(root) {
		return fmt.Errorf("%w: pin %s: the CAR's roots are %v", ErrBadCAR, root, roots)
	}
	if ok, err := n.bs.Has(ctx, root); err != nil || !ok {
		return fmt.Errorf("%w: pin %s: the root block is not in the CAR", ErrBadCAR, root)
	}
	if err := n.addPin(root.String()); err != nil {
		return err
	}
	n.log.Info("pinned", "root", root, "site", p.Site)
	return nil
}
