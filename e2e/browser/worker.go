package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

// WorkerRequest is one entry of the worker's verity-stats reply.
type WorkerRequest struct {
	URL       string  `json:"url"`
	Transport string  `json:"transport"`
	Node      string  `json:"node"`
	Blocks    int     `json:"blocks"`
	Bytes     int64   `json:"bytes"`
	TTFBMs    float64 `json:"ttfbMs"`
	Status    int     `json:"status"`
	Error     string  `json:"error"`
	Failovers int     `json:"failovers"` // sources abandoned mid-request
	Parallel  int     `json:"parallel"`  // nodes that fetched the body at once (0: one stream)
	Hedges    int     `json:"hedges"`    // segments asked of a second node after a stall
}

// WorkerStats is the worker's verity-stats reply.
type WorkerStats struct {
	Requests []WorkerRequest `json:"requests"`
}

// WorkerReport is one report the worker sent to the gateway.
type WorkerReport struct {
	Node   string `json:"node"`
	CID    string `json:"cid"`
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// Message posts {type: typ} to the controlling service worker with a
// MessageChannel port and returns the JSON of its reply on that port.
func (b *Browser) Message(ctx context.Context, typ string) (json.RawMessage, error) {
	ms := budget(ctx, b.cfg.WaitTimeout).Milliseconds()
	raw, err := Call[[]byte](ctx, b, `(type, ms) => {
		const c = navigator.serviceWorker.controller;
		if (!c) throw new Error('no service worker controls the page');
		const ch = new MessageChannel();
		const p = new Promise((resolve, reject) => {
			const t = setTimeout(() => reject(new Error('no reply to ' + type + ' within ' + ms + ' ms')), ms);
			ch.port1.onmessage = e => { clearTimeout(t); ch.port1.close(); resolve(e.data); };
		});
		c.postMessage({type}, [ch.port2]);
		return p;
	}`, typ, ms)
	if err != nil {
		return nil, fmt.Errorf("browser: message %s: %w", typ, err)
	}
	return json.RawMessage(raw), nil
}

// WorkerStats asks the worker for its per-request stats (verity-stats).
func (b *Browser) WorkerStats(ctx context.Context) (WorkerStats, error) {
	raw, err := b.Message(ctx, "verity-stats")
	if err != nil {
		return WorkerStats{}, err
	}
	var s WorkerStats
	if err := json.Unmarshal(raw, &s); err != nil {
		return WorkerStats{}, fmt.Errorf("browser: verity-stats reply %s: %w", clip(raw), err)
	}
	return s, nil
}

// WorkerReports asks the worker for the reports it sent (verity-reports).
// The reply may be a list or an object with a "reports" list.
func (b *Browser) WorkerReports(ctx context.Context) ([]WorkerReport, error) {
	raw, err := b.Message(ctx, "verity-reports")
	if err != nil {
		return nil, err
	}
	var list []WorkerReport
	if err := json.Unmarshal(raw, &list); err == nil {
		return list, nil
	}
	var obj struct {
		Reports []WorkerReport `json:"reports"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("browser: verity-reports reply %s: %w", clip(raw), err)
	}
	return obj.Reports, nil
}

func clip(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// WorkerVersions returns the service worker versions the browser knows,
// from the ServiceWorker domain's events.
func (b *Browser) WorkerVersions(ctx context.Context) ([]*serviceworker.Version, error) {
	ctx, cancel := b.tabCtx(ctx)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, b.cfg.WaitTimeout)
	defer cancel2()
	events := chromedp.Events(ctx, serviceworker.WorkerVersionUpdated)
	if _, err := chromedp.Call(ctx, serviceworker.Enable, cdp.Empty{}); err != nil {
		return nil, fmt.Errorf("browser: ServiceWorker.enable: %w", err)
	}
	// Enable replays the current versions as one or more events; collect
	// them until the stream is quiet.
	versions := map[string]*serviceworker.Version{}
	quiet := time.NewTimer(300 * time.Millisecond)
	defer quiet.Stop()
	next, stop := pull(events)
	defer stop()
	for {
		select {
		case ev, ok := <-next:
			if !ok {
				return nil, fmt.Errorf("browser: service worker events: %w", ctx.Err())
			}
			for _, v := range ev.Versions {
				versions[v.VersionID] = v
			}
			quiet.Reset(300 * time.Millisecond)
		case <-quiet.C:
			out := make([]*serviceworker.Version, 0, len(versions))
			for _, v := range versions {
				out = append(out, v)
			}
			_, _ = chromedp.Call(ctx, serviceworker.Disable, cdp.Empty{})
			return out, nil
		}
	}
}

// RunningWorkers counts the service worker versions the browser reports
// running (WorkerVersions).
func (b *Browser) RunningWorkers(ctx context.Context) (int, error) {
	vs, err := b.WorkerVersions(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range vs {
		if v.RunningStatus == serviceworker.VersionRunningStatusRunning {
			n++
		}
	}
	return n, nil
}

// StopAllWorkers stops every running service worker of the browser
// (ServiceWorker.stopAllWorkers) and waits until none is running, the way
// the browser stops an idle worker. A worker that starts again meanwhile
// (a page's message starts it: verity.js keeps its worker running with
// one every 20 s) is stopped again.
func (b *Browser) StopAllWorkers(ctx context.Context) error {
	ctx, cancel := b.tabCtx(ctx)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, b.cfg.WaitTimeout)
	defer cancel2()
	events := chromedp.Events(ctx, serviceworker.WorkerVersionUpdated)
	next, stop := pull(events)
	defer stop()
	if _, err := chromedp.Call(ctx, serviceworker.Enable, cdp.Empty{}); err != nil {
		return fmt.Errorf("browser: ServiceWorker.enable: %w", err)
	}
	defer chromedp.Call(ctx, serviceworker.Disable, cdp.Empty{})
	if _, err := chromedp.Call(ctx, serviceworker.StopAllWorkers, cdp.Empty{}); err != nil {
		return fmt.Errorf("browser: ServiceWorker.stopAllWorkers: %w", err)
	}
	status := map[string]serviceworker.VersionRunningStatus{}
	settle := time.NewTimer(200 * time.Millisecond)
	defer settle.Stop()
	for {
		select {
		case ev, ok := <-next:
			if !ok {
				return &TimeoutError{What: "service workers to stop", After: b.cfg.WaitTimeout.String()}
			}
			for _, v := range ev.Versions {
				status[v.VersionID] = v.RunningStatus
			}
			settle.Reset(200 * time.Millisecond)
		case <-settle.C:
			running := 0
			for _, s := range status {
				if s != serviceworker.VersionRunningStatusStopped {
					running++
				}
			}
			if running == 0 {
				return nil
			}
			for _, st := range status {
				if st == serviceworker.VersionRunningStatusRunning {
					// Started again since the stop: stop it again.
					if _, err := chromedp.Call(ctx, serviceworker.StopAllWorkers, cdp.Empty{}); err != nil {
						return fmt.Errorf("browser: ServiceWorker.stopAllWorkers: %w", err)
					}
					break
				}
			}
			settle.Reset(200 * time.Millisecond)
		}
	}
}

// pull turns an event iterator into a channel, closed at the first error
// (the end of the iterator's context). stop ends the forwarding.
func pull[E any](seq func(func(E, error) bool)) (<-chan E, func()) {
	ch := make(chan E, 64)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		for ev, err := range seq {
			if err != nil {
				return
			}
			select {
			case ch <- ev:
			case <-done:
				return
			}
		}
	}()
	return ch, func() { close(done) }
}

// BypassServiceWorker makes the tab's requests skip the service worker and
// go to the network (DevTools Network.setBypassServiceWorker), or stop
// doing so.
func (b *Browser) BypassServiceWorker(ctx context.Context, bypass bool) error {
	if bypass {
		if err := b.NetworkEvents(ctx, true); err != nil {
			return err
		}
	}
	tctx, cancel := b.tabCtx(ctx)
	defer cancel()
	if _, err := chromedp.Call(tctx, network.SetBypassServiceWorker, network.SetBypassServiceWorkerParams{Bypass: bypass}); err != nil {
		return fmt.Errorf("browser: Network.setBypassServiceWorker: %w", err)
	}
	if !bypass {
		return b.NetworkEvents(ctx, false)
	}
	return nil
}

// NetworkEvents turns the tab's DevTools Network domain on (keeping no
// response bodies) or off. With it on, Chromium reports each request's
// events, and every chunk of a body, to the tab's listeners.
func (b *Browser) NetworkEvents(ctx context.Context, on bool) error {
	ctx, cancel := b.tabCtx(ctx)
	defer cancel()
	if on {
		zero := int64(0)
		if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{MaxTotalBufferSize: &zero, MaxResourceBufferSize: &zero}); err != nil {
			return fmt.Errorf("browser: Network.enable: %w", err)
		}
		return nil
	}
	if _, err := chromedp.Call(ctx, network.Disable, cdp.Empty{}); err != nil {
		return fmt.Errorf("browser: Network.disable: %w", err)
	}
	return nil
}

// Keepalive posts {type: 'verity-keepalive'} to the controlling service
// worker, as verity.js does while its page is used or comes back into
// view: it keeps a running worker, and starts a stopped one, which then
// boots its Go side.
func (b *Browser) Keepalive(ctx context.Context) error {
	if _, err := Call[bool](ctx, b, `() => { navigator.serviceWorker.controller.postMessage({type: 'verity-keepalive'}); return true; }`); err != nil {
		return fmt.Errorf("browser: keepalive: %w", err)
	}
	return nil
}
