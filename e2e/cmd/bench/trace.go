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
	tr, err := b.StartTrace(ctx, traceCategories)
	if err != nil {
		return nil, err
	}
	return func() error {
		raw, err := tr.Stop(ctx)
		if err != nil {
			return err
		}
		js, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, js, 0o644); err != nil {
			return err
		}
		evs, err := browser.ParseTrace(raw)
		if err != nil {
			return fmt.Errorf("read the trace back: %w", err)
		}
		fmt.Fprintf(w, "trace of %d events written to %s\n", len(evs), path)
		traceSummary(w, evs)
		return nil
	}, nil
}

// traceSummary writes, for the renderers' thread pools, their CPU time by
// the place each task was posted from, and the renderers' wasm
// compilation: top tier (TurboFan, on the thread pool) and lazy baseline
// (Liftoff, on the thread that first calls a function).
func traceSummary(w io.Writer, evs []browser.TraceEvent) {
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
	renderer := func(e browser.TraceEvent) bool { return procs[e.Pid] == "Renderer" }
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
