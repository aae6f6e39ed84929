package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// Trace is a trace of the whole browser (every process, the service
// workers' threads included) being recorded with the DevTools Tracing
// domain; StartTrace starts one, Stop ends it.
type Trace struct {
	b      *Browser
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	events []json.RawMessage
}

// TraceEvent is the part of a trace event the tests and the bench read.
type TraceEvent struct {
	Name string         `json:"name"`
	Cat  string         `json:"cat"`
	Ph   string         `json:"ph"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	TDur float64        `json:"tdur"` // µs of the thread's CPU
	Args map[string]any `json:"args"`
}

// StartTrace starts recording the given trace categories; ctx bounds
// nothing after it returns (Stop ends the trace).
func (b *Browser) StartTrace(ctx context.Context, categories []string) (*Trace, error) {
	tctx, cancel := context.WithCancel(b.Context())
	t := &Trace{b: b, cancel: cancel, done: make(chan struct{})}
	var once sync.Once
	err := chromedp.Listen(tctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			t.mu.Lock()
			for _, v := range e.Value {
				t.events = append(t.events, json.RawMessage(v))
			}
			t.mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(t.done) })
		}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	if err := b.browserCall(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{TraceConfig: &tracing.TraceConfig{IncludedCategories: categories}})
		return err
	}); err != nil {
		cancel()
		return nil, fmt.Errorf("browser: start the trace: %w", err)
	}
	return t, nil
}

// Stop ends the trace and returns its events, each as the browser wrote it
// (a JSON array of them is what chrome://tracing and Perfetto open). It
// waits for them until ctx's deadline, or 30 s without one.
func (t *Trace) Stop(ctx context.Context) ([]json.RawMessage, error) {
	defer t.cancel()
	if err := t.b.browserCall(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, tracing.End, cdp.Empty{})
		return err
	}); err != nil {
		return nil, fmt.Errorf("browser: end the trace: %w", err)
	}
	wait := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	select {
	case <-t.done:
	case <-time.After(wait):
		return nil, fmt.Errorf("browser: the trace did not complete in %v", wait.Round(time.Second))
	case <-ctx.Done():
		return nil, fmt.Errorf("browser: the trace did not complete: %w", ctx.Err())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.events, nil
}

// ParseTrace reads the events Stop returned.
func ParseTrace(raw []json.RawMessage) ([]TraceEvent, error) {
	evs := make([]TraceEvent, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &evs[i]); err != nil {
			return nil, fmt.Errorf("browser: trace event %d: %w", i, err)
		}
	}
	return evs, nil
}

// browserCall runs f on the browser's own DevTools target.
func (b *Browser) browserCall(f func(ctx context.Context) error) error {
	return chromedp.Do(b.Context(), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error { return f(ctx) }))
}
