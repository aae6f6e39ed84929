package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// pinSources are the URLs a pin order may be fetched from, in order: the
// accepting gateway's CAR, then the other holders' (nodeproto.Pin).
func pinSources(p nodeproto.Pin) []string {
	var out []string
	if p.CAR != "" {
		out = append(out, p.CAR)
	}
	for _, s := range p.Sources {
		if s != "" && s != p.CAR {
			out = append(out, s)
		}
	}
	return out
}

// fetchPin fetches root's CAR from src, checks that it is exactly root's
// whole DAG (internal/carcheck, as the gateway checks a deploy: a source
// may be another node, which is trusted for nothing) and stores every
// block (importCAR). signed signs the GET with the node key (the
// gateway's CAR requires it). On success it returns the import run, which
// the caller releases once the pin is recorded; on failure what the run
// stored is undone and released.
func (n *Node) fetchPin(ctx context.Context, root cid.Cid, src string, signed bool) (_ *importRun, err error) {
	client := n.cfg.CoordinatorClient
	if client == nil {
		client = http.DefaultClient
	}
	if !signed {
		// Another node: it may not send its peers elsewhere.
		c := *client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return errHolderRedirect }
		client = &c
	}
	// No source may trickle, the gateway included: a pin holds the
	// import lock, which a collection waits for, and every pin after
	// the collection waits for it.
	ctx, stop := stallGuard(ctx, n.cfg.PinSourceStall)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	if signed {
		nodeproto.SignContentRequest(req, n.priv, n.cfg.Now())
	}
	resp, err := client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errHolderStalled) {
			return nil, fmt.Errorf("fetch: %w", cause)
		}
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxPinError))
		return nil, fmt.Errorf("fetch: %s: %s", resp.Status, msg)
	}
	dag := root // another holder: only root's traversal is taken
	if signed {
		dag = cid.Undef
	}
	body := guarded(ctx, counted{resp.Body, n.metrics.pinFetched})
	run := n.newImportRun()
	if _, err = n.importCAR(ctx, run, body, dag, root); err != nil {
		run.release()
		if cause := context.Cause(ctx); errors.Is(cause, errHolderStalled) {
			return nil, cause
		}
		return nil, err
	}
	return run, nil
}

var (
	errHolderRedirect = errors.New("a holder may not redirect")
	errHolderStalled  = errors.New("the source sent too little: abandoned for the next source")
)

// stallMin is the least a holder must deliver in every PinSourceStall.
const stallMin = 64 << 10

type stallKey struct{}

type stallCounter struct{ n atomic.Int64 }

// stallGuard returns a context cancelled with errHolderStalled once a
// window of d passes in which fewer than stallMin bytes were read through
// the countingReader fetchPin puts on the body. stop ends the guard.
func stallGuard(ctx context.Context, d time.Duration) (context.Context, func()) {
	g := &stallCounter{}
	ctx, cancel := context.WithCancelCause(context.WithValue(ctx, stallKey{}, g))
	var t *time.Timer
	var mu sync.Mutex
	stopped := false
	var check func()
	check = func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if g.n.Swap(0) < stallMin {
			cancel(errHolderStalled)
			return
		}
		t = time.AfterFunc(d, check)
	}
	t = time.AfterFunc(d, check)
	return ctx, func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
		cancel(nil)
	}
}

// guarded is r counted by the stallGuard of ctx, if it has one.
func guarded(ctx context.Context, r io.Reader) io.Reader {
	if g, ok := ctx.Value(stallKey{}).(*stallCounter); ok {
		return &countingReader{r: r, n: &g.n}
	}
	return r
}

// countingReader adds what it reads to n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n.Add(int64(k))
	return k, err
}

// errNoPinSource: a pin order with no URL at all.
var errNoPinSource = errors.New("no source to fetch from")
