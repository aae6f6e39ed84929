package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// NodeSource lists the storage nodes' signed records, preferred first. The
// gateway verifies every record before using it and skips invalid ones.
type NodeSource interface {
	Nodes(ctx context.Context) ([]noderecord.Signed, error)
}

// RankedNodeSource is an optional capability of a NodeSource: it lists the
// nodes ranked for a visitor at client (best first), as the coordinator's
// router does. The gateway uses it for sessions and its own fetches.
type RankedNodeSource interface {
	NodesFor(ctx context.Context, client netip.Addr) ([]noderecord.Signed, error)
}

// PlacementSource is an optional capability of a NodeSource: it knows
// which nodes hold a root (the coordinator's placements), so sessions and
// the gateway's own fetches go to the root's pinned holders only.
type PlacementSource interface {
	Placement(root string) (coordinator.Placement, bool)
}

var (
	_ NodeSource = NodesFunc(nil)
	_ NodeSource = StaticNodes(nil)
	_ NodeSource = (*HTTPNodes)(nil)
)

// NodesFunc adapts a function to a NodeSource.
type NodesFunc func(ctx context.Context) ([]noderecord.Signed, error)

// Nodes implements NodeSource.
func (f NodesFunc) Nodes(ctx context.Context) ([]noderecord.Signed, error) { return f(ctx) }

// StaticNodes is a fixed list of record getters, called on every use so
// records that rotate (e.g. (*node.Node).Record of in-process nodes) stay
// current.
type StaticNodes []func() noderecord.Signed

// StaticRecords returns a StaticNodes serving fixed records.
func StaticRecords(recs ...noderecord.Signed) StaticNodes {
	s := make(StaticNodes, len(recs))
	for i, r := range recs {
		s[i] = func() noderecord.Signed { return r }
	}
	return s
}

// Nodes implements NodeSource.
func (s StaticNodes) Nodes(context.Context) ([]noderecord.Signed, error) {
	out := make([]noderecord.Signed, 0, len(s))
	for _, f := range s {
		out = append(out, f())
	}
	return out, nil
}

// RecordPath is where a node publishes its signed record, below its HTTP
// base URL.
const RecordPath = "/.well-known/verity/node"

// maxRecordBytes bounds a fetched node record.
const maxRecordBytes = 64 << 10

// HTTPNodesConfig configures an HTTPNodes.
type HTTPNodesConfig struct {
	// URLs are the nodes' HTTP base URLs, e.g. http://127.0.0.1:4001.
	URLs []string
	// Client fetches records. Default: an http.Client with a 5 s timeout.
	Client *http.Client
	// Refresh is how long fetched records are reused. Default 30 s.
	Refresh time.Duration
	// Logger default slog.Default(); Now default time.Now.
	Logger *slog.Logger
	Now    func() time.Time
}

// HTTPNodes is a NodeSource that fetches each node's signed record from
// URL + RecordPath, refreshing them when older than Refresh (lazily, on the
// first Nodes call after that; no goroutine of its own). A node whose fetch
// fails keeps its last record, which verification drops once it expires.
type HTTPNodes struct {
	cfg HTTPNodesConfig

	refresh sync.Mutex // held while fetching
	mu      sync.Mutex
	recs    map[string]noderecord.Signed // by URL
	fetched time.Time
}

// NewHTTPNodes returns an HTTPNodes for cfg.
func NewHTTPNodes(cfg HTTPNodesConfig) *HTTPNodes {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	cfg.URLs = urls
	return &HTTPNodes{cfg: cfg, recs: make(map[string]noderecord.Signed)}
}

// Nodes implements NodeSource.
func (h *HTTPNodes) Nodes(ctx context.Context) ([]noderecord.Signed, error) {
	if h.stale() {
		h.refresh.Lock()
		if h.stale() {
			h.fetchAll(ctx)
		}
		h.refresh.Unlock()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]noderecord.Signed, 0, len(h.cfg.URLs))
	for _, u := range h.cfg.URLs {
		if rec, ok := h.recs[u]; ok {
			out = append(out, rec)
		}
	}
	return out, nil
}

func (h *HTTPNodes) stale() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.fetched.IsZero() || h.cfg.Now().Sub(h.fetched) >= h.cfg.Refresh
}

func (h *HTTPNodes) fetchAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, u := range h.cfg.URLs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := fetchRecord(ctx, h.cfg.Client, u)
			if err != nil {
				h.cfg.Logger.Warn("node record fetch failed", "url", u, "err", err)
				return
			}
			h.mu.Lock()
			h.recs[u] = rec
			h.mu.Unlock()
		}()
	}
	wg.Wait()
	h.mu.Lock()
	h.fetched = h.cfg.Now()
	h.mu.Unlock()
}

func fetchRecord(ctx context.Context, client *http.Client, base string) (noderecord.Signed, error) {
	var rec noderecord.Signed
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+RecordPath, nil)
	if err != nil {
		return rec, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return rec, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return rec, fmt.Errorf("status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRecordBytes+1))
	if err != nil {
		return rec, err
	}
	if len(body) > maxRecordBytes {
		return rec, fmt.Errorf("record over %d bytes", maxRecordBytes)
	}
	return noderecord.Parse(body)
}
