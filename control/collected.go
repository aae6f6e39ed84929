package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/events"
)

// The CARs of collected content. The collector (coordinator/collect.go)
// unplaces a root nothing references; every gateway then removes the
// root's CAR from its content store, where it was kept for nodes to
// fetch. A store of the same bytes may be placing the root again from
// that file at the same moment, so a CAR is removed only when, under
// carHolds' lock, no store holds it and the root has no placement:
//
//   - a store holds the root's CAR (Hold) from before it stages or reads
//     it until its object is acknowledged or refused: the S3 API holds
//     from before StoreCAR to the end of Keep and the wait for holders,
//     so a sweep between the nodes holding the object and its record
//     (Keep then places the root again from the file) finds it held;
//   - staging a CAR, or placing one kept already (StoreRoot, Keep), also
//     holds it until its placement exists (or placeWait), so a deploy
//     of the same root is covered between its rename and its placement;
//   - once a placement exists, the root is not removed; a placement
//     collected again is a new content.collected, looked at again.
//
// Each gateway reads content.collected with a durable consumer of its own
// (contentDurable): one stopped when content was collected removes the
// CAR when it starts again.

// placeWait bounds how long a staged CAR is held waiting for its
// placement; a store that placed nothing by then failed.
const placeWait = 10 * time.Minute

// carHolds counts the holds on each root's CAR.
type carHolds struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *carHolds) add(root string) (release func()) {
	h.mu.Lock()
	if h.n == nil {
		h.n = map[string]int{}
	}
	h.n[root]++
	h.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			if h.n[root]--; h.n[root] <= 0 {
				delete(h.n, root)
			}
			h.mu.Unlock()
		})
	}
}

// Hold keeps root's CAR in the content store while a store uses it:
// collecting root does not remove it until release is called (release
// is idempotent). A store takes it before StoreCAR (or before Keep, for
// content stored earlier) and releases it once it has acknowledged or
// refused the object.
func (c *Control) Hold(root string) (release func()) { return c.holds.add(root) }

// holdUntilPlaced holds root's CAR until root has a placement (or
// placeWait passed, or the control plane closes). It watches the
// placement's key, so a placement written and collected at once is seen
// all the same.
func (c *Control) holdUntilPlaced(root string) {
	release := c.holds.add(root)
	if c.ctx.Err() != nil {
		release()
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer release()
		ctx, cancel := context.WithTimeout(c.ctx, placeWait)
		defer cancel()
		w, err := c.places.Watch(ctx, root, jetstream.IgnoreDeletes())
		if err != nil {
			c.log.Warn("CAR held until placed: watch failed", "root", root, "err", err)
			<-ctx.Done()
			return
		}
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-w.Updates():
				if e != nil && e.Operation() == jetstream.KeyValuePut {
					return
				}
			}
		}
	}()
}

// contentDurable names this gateway's consumer of content.collected.
func contentDurable(name string) string {
	sum := sha256.Sum256([]byte(name))
	return "content-" + hex.EncodeToString(sum[:12])
}

func (c *Control) onContentCollected(ctx context.Context, ev events.Event) error {
	var cc events.ContentCollected
	if err := ev.Decode(&cc); err != nil {
		return nil
	}
	return c.removeCollected(ctx, cc.Root)
}

// removeCollected removes root's CAR from the content store unless a
// store holds it or root is placed again.
func (c *Control) removeCollected(ctx context.Context, root string) error {
	res, size, err := c.removeUnplacedCAR(ctx, root)
	switch res {
	case carKeptHeld:
		c.cmetrics.kept.Inc()
		c.log.Info("collected content's CAR kept: a store is placing it again", "root", root)
	case carKeptPlaced:
		c.cmetrics.kept.Inc()
		c.log.Info("collected content's CAR kept: placed again", "root", root)
	case carRemoved:
		c.cmetrics.removed.Inc()
		c.cmetrics.removedBytes.Add(float64(size))
		c.log.Info("collected content's CAR removed", "root", root, "bytes", size)
	}
	return err
}

// What removeUnplacedCAR did.
const (
	carAbsent = iota
	carKeptHeld
	carKeptPlaced
	carRemoved
)

// removeUnplacedCAR removes root's CAR (of size bytes) from the content
// store, once root was unplaced, unless a store holds it (Hold: a PUT of
// the same bytes, which places it again from this CAR) or root is placed
// again. An error leaves the CAR.
func (c *Control) removeUnplacedCAR(ctx context.Context, root string) (res int, size int64, err error) {
	if parsed, err := cid.Parse(root); err != nil || parsed.String() != root {
		return carAbsent, 0, nil
	}
	path := c.contentPath(root)
	c.holds.mu.Lock()
	defer c.holds.mu.Unlock()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return carAbsent, 0, nil
	}
	if err != nil {
		return carAbsent, 0, err
	}
	if c.holds.n[root] > 0 {
		return carKeptHeld, fi.Size(), nil
	}
	_, placed, err := c.placement(ctx, root)
	if err != nil {
		return carAbsent, fi.Size(), err // delivered again
	}
	if placed {
		return carKeptPlaced, fi.Size(), nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return carAbsent, fi.Size(), err
	}
	return carRemoved, fi.Size(), nil
}

// contentMetrics count what removeCollected did, registered on
// Config.Registerer when it is set.
type contentMetrics struct {
	removed, removedBytes, kept prometheus.Counter
}

func newContentMetrics(reg prometheus.Registerer) (*contentMetrics, error) {
	m := &contentMetrics{
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_content_collected_removed_total",
			Help: "CARs of collected content removed from this gateway's content store.",
		}),
		removedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_content_collected_removed_bytes_total",
			Help: "Bytes of the CARs of collected content removed from this gateway's content store.",
		}),
		kept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "verity_content_collected_kept_total",
			Help: "CARs of collected content kept: a store was placing the same root again, or had placed it.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.removed, m.removedBytes, m.kept} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
