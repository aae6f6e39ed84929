package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/e2e/browser"
)

// netEvents counts the Network.dataReceived events a tab sends the bench:
// one per chunk a response hands to the page while the DevTools Network
// domain is on.
type netEvents struct{ n atomic.Int64 }

// count is the number of events received so far.
func (e *netEvents) count() int64 { return e.n.Load() }

// none fails when events arrived since from: the domain is on where the
// bench measures as a visitor's browser runs (an action turned it on and
// did not turn it off).
func (e *netEvents) none(what string, from int64) error {
	if n := e.count() - from; n > 0 {
		return fmt.Errorf("%s: %d DevTools Network.dataReceived events: the Network domain is on during the measured fetches", what, n)
	}
	return nil
}

// quietNetworkEvents turns off the DevTools Network domain chromedp enables
// on the tab, and counts the body events that still arrive. With it on,
// Chromium reports every chunk a response hands to the page
// (Network.dataReceived: about 650 per 32 MiB through the worker, 100 from
// the gateway), relayed by the browser process to the bench: a fifth to a
// third of the worker row's CPU per MiB (VERITY_BENCH_CPU,
// docs/benchmarks.md), which a visitor's browser does not spend. Rows that
// bypass the worker need the domain (Network.setBypassServiceWorker):
// b.BypassServiceWorker turns it on for them and off again after.
func quietNetworkEvents(ctx context.Context, b *browser.Browser) (*netEvents, error) {
	tctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := chromedp.Do(tctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.Disable, cdp.Empty{})
		return err
	})); err != nil {
		return nil, fmt.Errorf("Network.disable: %w", err)
	}
	e := &netEvents{}
	if err := chromedp.Listen(b.Context(), func(ev any) {
		if _, ok := ev.(*network.EventDataReceived); ok {
			e.n.Add(1)
		}
	}); err != nil {
		return nil, fmt.Errorf("listen to the tab's events: %w", err)
	}
	return e, nil
}

// mediaLog prints, to stderr, the DevTools Network events of the tab's
// requests whose URL contains match: when each was sent (its Range), when
// its head came (with the service worker's steps when one answered) and
// when its first and last bytes came, in ms from the first request seen.
// It turns the Network domain on, which costs the rows it runs in CPU
// (quietNetworkEvents): for finding where time goes, not for figures.
func mediaLog(ctx context.Context, b *browser.Browser, match string) (stop func(), err error) {
	if err := b.NetworkEvents(ctx, true); err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		base  float64
		first = map[network.RequestID]bool{}
		got   = map[network.RequestID]int64{}
		last  = map[network.RequestID]float64{}
	)
	rel := func(ts float64) float64 {
		if base == 0 {
			base = ts
		}
		return (ts - base) * 1000
	}
	lctx, cancel := context.WithCancel(b.Context())
	if err := chromedp.Listen(lctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if !strings.Contains(e.Request.URL, match) {
				return
			}
			first[e.RequestID] = false
			fmt.Fprintf(os.Stderr, "net %9.1f %s sent %s range=%v\n", rel(e.Timestamp.Float64()), e.RequestID, e.Request.URL[strings.LastIndex(e.Request.URL, "?"):], e.Request.Headers["Range"])
		case *network.EventResponseReceived:
			if _, ok := first[e.RequestID]; !ok {
				return
			}
			t := e.Response.Timing
			var steps string
			if t != nil {
				steps = fmt.Sprintf(" req@%.1f worker start %.1f ready %.1f fetch %.1f settled %.1f headers %.1f", rel(t.RequestTime), t.WorkerStart, t.WorkerReady, t.WorkerFetchStart, t.WorkerRespondWithSettled, t.ReceiveHeadersEnd)
			}
			fmt.Fprintf(os.Stderr, "net %9.1f %s head %d sw=%v%s timing=%v\n", rel(e.Timestamp.Float64()), e.RequestID, e.Response.Status, e.Response.FromServiceWorker, steps, e.Response.Headers["server-timing"])
		case *network.EventDataReceived:
			got[e.RequestID] += e.DataLength
			last[e.RequestID] = rel(e.Timestamp.Float64())
			if seen, ok := first[e.RequestID]; ok && !seen {
				first[e.RequestID] = true
				fmt.Fprintf(os.Stderr, "net %9.1f %s first data %d\n", rel(e.Timestamp.Float64()), e.RequestID, e.DataLength)
			}
		case *network.EventLoadingFinished:
			if _, ok := first[e.RequestID]; ok {
				fmt.Fprintf(os.Stderr, "net %9.1f %s finished %d\n", rel(e.Timestamp.Float64()), e.RequestID, int64(e.EncodedDataLength))
			}
		case *network.EventLoadingFailed:
			if _, ok := first[e.RequestID]; ok {
				fmt.Fprintf(os.Stderr, "net %9.1f %s failed %s canceled=%v after %d B, the last at %.1f\n", rel(e.Timestamp.Float64()), e.RequestID, e.ErrorText, e.Canceled, got[e.RequestID], last[e.RequestID])
			}
		}
	}); err != nil {
		cancel()
		return nil, err
	}
	return func() {
		cancel()
		_ = b.NetworkEvents(ctx, false)
	}, nil
}
