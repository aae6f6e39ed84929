package main

import (
	"context"
	"fmt"
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
