package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/e2e/browser"
)

// traceCategories are what browserTrace records: every task's posting
// site and CPU time (toplevel), the renderer's script and wasm compilation
// (v8, v8.wasm and its detail), and the loaders.
var traceCategories = []string{
	"toplevel", "v8", "v8.wasm", "disabled-by-default-v8.wasm.detailed", "disabled-by-default-v8.compile",
	"blink", "loading", "ServiceWorker", "disabled-by-default-devtools.timeline",
}

// browserTrace records a trace of the whole browser (every process) with
// the DevTools Tracing domain until the returned stop is called, which
// writes the trace's events as a JSON array to path (chrome://tracing and
// Perfetto open it) and a summary to w (traceSummary).
func browserTrace(ctx context.Context, b *browser.Browser, path string, w io.Writer) (stop func() error, err error) {
	var mu sync.Mutex
	var events []json.RawMessage
	done := make(chan struct{})
	var once sync.Once
	tctx, cancel := context.WithCancel(b.Context())
	err = chromedp.Listen(tctx, func(ev any) {
		switch e := ev.(type) {
		case *tracing.EventDataCollected:
			mu.Lock()
			for _, v := range e.Value {
				events = append(events, json.RawMessage(v))
			}
			mu.Unlock()
		case *tracing.EventTracingComplete:
			once.Do(func() { close(done) })
		}
	})
	if err != nil {
		cancel()
		return nil, err
	}
	call := func(f func(ctx context.Context) error) error {
		return chromedp.Do(b.Context(), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error { return f(ctx) }))
	}
	if err := call(func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{TraceConfig: &tracing.TraceConfig{IncludedCategories: traceCategories}})
		return err
	}); err != nil {
		cancel()
		return nil, fmt.Errorf("start the trace: %w", err)
	}
	return func() error {
		defer cancel()
		if err := call(func(ctx context.Context) error {
			_, err := chromedp.Call(ctx, tracing.End, cdp.Empty{})
			return err
		}); err != nil {
			return fmt.Errorf("end the trace: %w", err)
		}
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("the trace did not complete in 30 s")
		case <-ctx.Done():
			return ctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		raw, err := json.Marshal(events)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			return err
		}
		var evs []traceEvent
		if err := json.Unmarshal(raw, &evs); err != nil {
			return fmt.Errorf("read the trace back: %w", err)
		}
		fmt.Fprintf(w, "trace of %d events written to %s\n", len(evs), path)
		traceSummary(w, evs)
		return nil
	}, nil
}

// traceEvent is the part of a trace event the summary reads.
type traceEvent struct {
	Name string         `json:"name"`
	Ph   string         `json:"ph"`
	Pid  int            `json:"pid"`
	Tid  int            `json:"tid"`
	TDur float64        `json:"tdur"` // µs of the thread's CPU
	Args map[string]any `json:"args"`
}

// traceSummary writes, for the renderers' thread pools, their CPU time by
// the place each task was posted from, and the renderers' wasm
// compilation: top tier (TurboFan, on the thread pool) and lazy baseline
// (Liftoff, on the thread that first calls a function).
func traceSummary(w io.Writer, evs []traceEvent) {
	threads := map[[2]int]string{}
	procs := map[int]string{}
	for _, e := range evs {
		if e.Ph != "M" {
			continue
		}
		name, _ := e.Args["name"].(string)
		switch e.Name {
		case "thread_name":
			threads[[2]int{e.Pid, e.Tid}] = name
		case "process_name":
			procs[e.Pid] = name
		}
	}
	renderer := func(e traceEvent) bool { return procs[e.Pid] == "Renderer" }
	bySource := map[string]float64{}
	var pool float64
	var wasm [2]float64 // top tier, lazy
	var wasmN [2]int
	for _, e := range evs {
		if e.Ph != "X" || !renderer(e) {
			continue
		}
		switch e.Name {
		case "ThreadPool_RunTask":
			if !strings.HasPrefix(threads[[2]int{e.Pid, e.Tid}], "ThreadPoolForeground") {
				continue
			}
			src, _ := e.Args["src_file"].(string)
			fn, _ := e.Args["src_func"].(string)
			bySource[src+" "+fn] += e.TDur
			pool += e.TDur
		case "wasm.TopTierCompilation":
			wasm[0] += e.TDur
			wasmN[0]++
		case "wasm.CompileLazy":
			wasm[1] += e.TDur
			wasmN[1]++
		}
	}
	fmt.Fprintf(w, "renderers' thread pools: %.0f ms of CPU; by where the tasks were posted:\n", pool/1e3)
	keys := slices.Collect(maps.Keys(bySource))
	slices.SortFunc(keys, func(a, b string) int { return cmp.Compare(bySource[b], bySource[a]) })
	for i, k := range keys {
		if i == 8 {
			break
		}
		fmt.Fprintf(w, "  %8.1f ms  %s\n", bySource[k]/1e3, k)
	}
	fmt.Fprintf(w, "renderers' wasm compilation: top tier %.0f ms of CPU in %d units, lazy baseline %.0f ms in %d functions\n",
		wasm[0]/1e3, wasmN[0], wasm[1]/1e3, wasmN[1])
}
