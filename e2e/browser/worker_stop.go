package browser

import (
	"context"
	"fmt"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
)

// StopRunningWorkers stops every running service worker of the browser
// (ServiceWorker.stopAllWorkers) and waits until each of them has been
// reported stopped, whether or not it starts again right after: unlike
// StopAllWorkers it suits a page that keeps fetching (a playing video),
// whose next request starts the worker again at once. It fails when no
// worker runs.
func (b *Browser) StopRunningWorkers(ctx context.Context) error {
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

	// Enable replays the current versions; the running (or starting)
	// ones are to stop. The replay ends once no event came for a while,
	// counted from its first event (a loaded machine may take longer to
	// send it).
	running := map[string]bool{}
	quiet := time.NewTimer(b.cfg.WaitTimeout)
	defer quiet.Stop()
replay:
	for {
		select {
		case ev, ok := <-next:
			if !ok {
				return &TimeoutError{What: "the service worker versions", After: b.cfg.WaitTimeout.String()}
			}
			for _, v := range ev.Versions {
				running[v.VersionID] = v.RunningStatus == serviceworker.VersionRunningStatusRunning ||
					v.RunningStatus == serviceworker.VersionRunningStatusStarting
			}
			quiet.Reset(500 * time.Millisecond)
		case <-quiet.C:
			break replay
		}
	}
	for id, r := range running {
		if !r {
			delete(running, id)
		}
	}
	if len(running) == 0 {
		return fmt.Errorf("browser: no service worker is running")
	}
	if _, err := chromedp.Call(ctx, serviceworker.StopAllWorkers, cdp.Empty{}); err != nil {
		return fmt.Errorf("browser: ServiceWorker.stopAllWorkers: %w", err)
	}
	for len(running) > 0 {
		ev, ok := <-next
		if !ok {
			return &TimeoutError{What: "the running service workers to stop", After: b.cfg.WaitTimeout.String()}
		}
		for _, v := range ev.Versions {
			if v.RunningStatus == serviceworker.VersionRunningStatusStopped {
				delete(running, v.VersionID)
			}
		}
	}
	return nil
}
