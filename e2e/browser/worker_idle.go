package browser

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// DetachWorkers stops DevTools attaching to the tab's service workers, as
// in a visitor's browser, and detaches the ones it is attached to. Chromium
// never stops a worker that DevTools is attached to for being idle, and
// chromedp attaches to every worker of its tabs; a test of what happens
// when the browser stops an idle worker (30 s without an event) needs
// them detached. AttachWorkers undoes it.
func (b *Browser) DetachWorkers(ctx context.Context) error {
	return b.autoAttach(ctx, false)
}

// AttachWorkers lets DevTools attach to the tab's workers again, as the
// browser package does by default.
func (b *Browser) AttachWorkers(ctx context.Context) error {
	return b.autoAttach(ctx, true)
}

func (b *Browser) autoAttach(ctx context.Context, on bool) error {
	ctx, cancel := b.tabCtx(ctx)
	defer cancel()
	flatten := true
	if _, err := chromedp.Call(ctx, target.SetAutoAttach, target.SetAutoAttachParams{AutoAttach: on, Flatten: &flatten}); err != nil {
		return fmt.Errorf("browser: Target.setAutoAttach(%v): %w", on, err)
	}
	return nil
}
