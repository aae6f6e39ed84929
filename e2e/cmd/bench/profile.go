package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/e2e/browser"
)

// workerProfile samples the CPU of the running service worker's thread
// (the DevTools Profiler of its target) until the returned stop is called,
// which writes where the thread's time went to w: the top functions by
// self time and by total time (each function counted once per sample),
// "(idle)" being the time it waited.
func workerProfile(ctx context.Context, b *browser.Browser, w io.Writer) (stop func() error, err error) {
	infos, err := chromedp.Targets(b.Context())
	if err != nil {
		return nil, fmt.Errorf("targets: %w", err)
	}
	// Verity's worker: the floors' workers (floor-sw.js, visit-floor-sw.js)
	// run beside it on origins of their own.
	var id target.ID
	for _, in := range infos {
		if in.Type == "service_worker" && !strings.Contains(in.URL, "floor-sw.js") {
			id = in.TargetID
		}
	}
	if id == "" {
		return nil, errors.New("no service worker target")
	}
	wctx, cancel := chromedp.NewContext(b.Context(), chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	err = chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		if _, err := chromedp.Call(ctx, profiler.Enable, cdp.Empty{}); err != nil {
			return err
		}
		if _, err := chromedp.Call(ctx, profiler.SetSamplingInterval, profiler.SetSamplingIntervalParams{Interval: 200}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, profiler.Start, cdp.Empty{})
		return err
	}))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("start the worker's profiler: %w", err)
	}
	return func() error {
		defer cancel()
		var p *profiler.Profile
		err := chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			r, err := chromedp.Call(ctx, profiler.Stop, cdp.Empty{})
			if err != nil {
				return err
			}
			p = r.Profile
			return nil
		}))
		if err != nil {
			return fmt.Errorf("stop the worker's profiler: %w", err)
		}
		writeProfile(w, p)
		return saveProfile(p)
	}, nil
}

// saveProfile writes p, as DevTools saves a profile (a .cpuprofile it
// opens again), into the directory VERITY_BENCH_PROFILE_DIR names, when set.
func saveProfile(p *profiler.Profile) error {
	dir := os.Getenv("VERITY_BENCH_PROFILE_DIR")
	if dir == "" || p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "worker-*.cpuprofile")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func writeProfile(w io.Writer, p *profiler.Profile) {
	if p == nil || len(p.Nodes) == 0 {
		return
	}
	byID := map[int64]*profiler.ProfileNode{}
	parent := map[int64]int64{}
	for _, n := range p.Nodes {
		byID[n.ID] = n
		for _, c := range n.Children {
			parent[c] = n.ID
		}
	}
	name := func(n *profiler.ProfileNode) string {
		f := n.CallFrame
		s := f.FunctionName
		if s == "" {
			s = "(anonymous)"
		}
		if u := f.URL; u != "" {
			u = u[strings.LastIndex(u, "/")+1:]
			if i := strings.IndexByte(u, '?'); i >= 0 {
				u = u[:i]
			}
			s += fmt.Sprintf(" %s:%d", u, f.LineNumber+1)
		}
		return s
	}
	// timeline: per 250 ms of the profile, the ms spent idle, in
	// Cache.put and in the Go worker (wasm).
	type bucket struct{ idle, put, wasm, all float64 }
	var timeline []bucket
	t := float64(0)
	self := map[string]float64{}
	total := map[string]float64{}
	var all float64
	for i, id := range p.Samples {
		if i >= len(p.TimeDeltas) {
			break
		}
		// A sample's time is the delta to the next one.
		d := float64(0)
		if i+1 < len(p.TimeDeltas) {
			d = float64(p.TimeDeltas[i+1]) / 1000
		}
		all += d
		t += float64(p.TimeDeltas[i]) / 1000
		n := byID[id]
		if n == nil {
			continue
		}
		bi := int(t / 250)
		for len(timeline) <= bi {
			timeline = append(timeline, bucket{})
		}
		bk := &timeline[bi]
		bk.all += d
		switch nm := name(n); {
		case nm == "(idle)":
			bk.idle += d
		case nm == "put":
			bk.put += d
		case strings.Contains(nm, ".wasm:"):
			bk.wasm += d
		}
		self[name(n)] += d
		seen := map[string]bool{}
		for cur, ok := id, true; ok; cur, ok = parent[cur] {
			k := name(byID[cur])
			if !seen[k] {
				seen[k] = true
				total[k] += d
			}
		}
	}
	top := func(m map[string]float64, k int) []string {
		keys := make([]string, 0, len(m))
		for key := range m {
			keys = append(keys, key)
		}
		slices.SortFunc(keys, func(a, b string) int {
			switch {
			case m[a] > m[b]:
				return -1
			case m[a] < m[b]:
				return 1
			}
			return strings.Compare(a, b)
		})
		if len(keys) > k {
			keys = keys[:k]
		}
		out := make([]string, len(keys))
		for i, key := range keys {
			out[i] = fmt.Sprintf("%8.1f ms %5.1f%%  %s", m[key], 100*m[key]/all, key)
		}
		return out
	}
	var tl []string
	for i, bk := range timeline {
		tl = append(tl, fmt.Sprintf("%5d ms: idle %3.0f put %3.0f wasm %3.0f other %3.0f", i*250, bk.idle, bk.put, bk.wasm, bk.all-bk.idle-bk.put-bk.wasm))
	}
	fmt.Fprintf(w, "worker timeline (ms per 250 ms):\n    %s\n", strings.Join(tl, "\n    "))
	fmt.Fprintf(w, "worker profile: %.0f ms sampled\n  self:\n    %s\n  total:\n    %s\n", all,
		strings.Join(top(self, 40), "\n    "), strings.Join(top(total, 60), "\n    "))
}
