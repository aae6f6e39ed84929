package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/events"
)

// TrafficPath is where workers post the counts of the requests they
// answered (docs/protocol.md §6.9).
const TrafficPath = "/.verity/v1/traffic"

// Bounds of one worker traffic report.
const (
	// maxTrafficBytes bounds a report's body.
	maxTrafficBytes = 512
	// MaxTrafficCount bounds each count of one report: a worker reports
	// every few seconds, and a report above it is refused (400), so a
	// visitor can add at most this much per report the rate limit lets
	// through.
	MaxTrafficCount = 1000
)

// TrafficReport is a worker's report: requests it answered since its
// previous report, from nodes (verified), from its verified cache, and
// through the gateway (its fallback, or the network).
type TrafficReport struct {
	Nodes    uint64 `json:"nodes"`
	Cache    uint64 `json:"cache"`
	Fallback uint64 `json:"fallback"`
}

// traffic counts the requests of each site's visitors, the gateway's own
// and those workers report, and puts them on the bus as site.traffic once
// per interval. Its map holds sites the gateway served, so it is bounded
// by the sites (and custom domains' owners) there are.
type traffic struct {
	bus      *events.Bus
	gateway  string
	interval time.Duration
	log      *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once

	mu    sync.Mutex
	sites map[string]*events.TrafficCount
}

func newTraffic(bus *events.Bus, gateway string, interval time.Duration, log *slog.Logger) *traffic {
	t := &traffic{bus: bus, gateway: gateway, interval: interval, log: log, sites: make(map[string]*events.TrafficCount)}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.run()
	return t
}

// count applies fn to site's pending counts.
func (t *traffic) count(site string, fn func(*events.TrafficCount)) {
	if t == nil || site == "" {
		return
	}
	t.mu.Lock()
	c := t.sites[site]
	if c == nil {
		c = &events.TrafficCount{}
		t.sites[site] = c
	}
	fn(c)
	t.mu.Unlock()
}

func (t *traffic) run() {
	defer t.wg.Done()
	tick := time.NewTicker(t.interval)
	defer tick.Stop()
	for {
		select {
		case <-t.ctx.Done():
			return
		case <-tick.C:
			t.flush(t.ctx)
		}
	}
}

// flush emits what was counted, MaxTrafficSites sites per event.
func (t *traffic) flush(ctx context.Context) {
	t.mu.Lock()
	pending := t.sites
	t.sites = make(map[string]*events.TrafficCount)
	t.mu.Unlock()
	for len(pending) > 0 {
		ev := events.SiteTraffic{Gateway: t.gateway, Sites: make(map[string]events.TrafficCount)}
		for site, c := range pending {
			if len(ev.Sites) == events.MaxTrafficSites {
				break
			}
			ev.Sites[site] = *c
			delete(pending, site)
		}
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, err := t.bus.Emit(ectx, events.TypeSiteTraffic, ev)
		cancel()
		if err != nil {
			t.log.Warn("site.traffic not emitted; its counts are lost", "sites", slices.Sorted(maps.Keys(ev.Sites)), "err", err)
		}
	}
}

// close stops the ticker and emits what is left. It is idempotent.
func (t *traffic) close() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.cancel()
		t.wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		t.flush(ctx)
	})
}

// countServed counts a request the gateway answered itself on a site's
// HTTPS path (content or CAR fallback, not a failure of its own: 5xx),
// for the site billed.
func (g *Gateway) countServed(w *statusWriter) {
	if g.traffic == nil || !w.metered || w.code >= 500 {
		return
	}
	site := w.site.Name
	if w.billed != "" {
		site = w.billed
	}
	g.traffic.count(site, func(c *events.TrafficCount) { c.Gateway++ })
}

// serveTraffic takes a worker's TrafficReport: bounded (maxTrafficBytes,
// each count at most MaxTrafficCount), rate-limited per client address
// (TrafficRate, TrafficBurst: 429 beyond), validated (400). The counts
// are the visitor's browser's word: they go on the bus as such, counted
// for the site, and nothing is billed by them.
func (g *Gateway) serveTraffic(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodPost) {
		return
	}
	if !g.trafficLimit.allow(clientAddr(r), g.cfg.Now()) {
		w.Header().Set("Retry-After", "10")
		g.fail(w, r, &RequestError{Kind: ErrRateLimited, Detail: "too many traffic reports from this address"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxTrafficBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			g.fail(w, r, &RequestError{Kind: ErrTooLarge, Detail: fmt.Sprintf("traffic report over %d bytes", maxTrafficBytes)})
			return
		}
		g.fail(w, r, badRequest("reading traffic report: %v", err))
		return
	}
	rep, err := parseTrafficReport(body)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if g.traffic != nil && rep != (TrafficReport{}) {
		g.traffic.count(site.Name, func(c *events.TrafficCount) {
			c.Nodes += rep.Nodes
			c.Cache += rep.Cache
			c.Fallback += rep.Fallback
			c.Reports++
		})
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// parseTrafficReport decodes and bounds a TrafficReport.
func parseTrafficReport(body []byte) (TrafficReport, error) {
	var rep TrafficReport
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		return rep, badRequest("malformed traffic report: %v", err)
	}
	if dec.More() {
		return rep, badRequest("trailing data after traffic report")
	}
	if rep.Nodes > MaxTrafficCount || rep.Cache > MaxTrafficCount || rep.Fallback > MaxTrafficCount {
		return rep, badRequest("traffic report: each count at most %d", MaxTrafficCount)
	}
	return rep, nil
}
