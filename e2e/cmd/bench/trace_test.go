package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/e2e/browser"
)

// TestTraceSummary: the summary counts the CPU of the renderers' thread
// pool tasks only (not the browser's, not other renderer threads), by
// where they were posted, and the renderers' wasm compilation.
func TestTraceSummary(t *testing.T) {
	raw := `[
	{"name":"process_name","ph":"M","pid":1,"args":{"name":"Renderer"}},
	{"name":"process_name","ph":"M","pid":2,"args":{"name":"Browser"}},
	{"name":"thread_name","ph":"M","pid":1,"tid":10,"args":{"name":"ThreadPoolForegroundWorker"}},
	{"name":"thread_name","ph":"M","pid":1,"tid":11,"args":{"name":"ServiceWorker thread"}},
	{"name":"thread_name","ph":"M","pid":2,"tid":20,"args":{"name":"ThreadPoolForegroundWorker"}},
	{"name":"ThreadPool_RunTask","ph":"X","pid":1,"tid":10,"tdur":300000,"args":{"src_file":"v8/src/wasm/module-compiler.cc","src_func":"InitCompileJob"}},
	{"name":"ThreadPool_RunTask","ph":"X","pid":1,"tid":10,"tdur":50000,"args":{"src_file":"v8/src/wasm/module-compiler.cc","src_func":"InitCompileJob"}},
	{"name":"ThreadPool_RunTask","ph":"X","pid":1,"tid":10,"tdur":70000,"args":{"src_file":"script_streamer.cc","src_func":"TryStartStreamingTask"}},
	{"name":"ThreadPool_RunTask","ph":"X","pid":1,"tid":11,"tdur":999000,"args":{"src_file":"elsewhere.cc","src_func":"NotAPool"}},
	{"name":"ThreadPool_RunTask","ph":"X","pid":2,"tid":20,"tdur":999000,"args":{"src_file":"browser.cc","src_func":"NotARenderer"}},
	{"name":"wasm.TopTierCompilation","ph":"X","pid":1,"tid":10,"tdur":200000},
	{"name":"wasm.TopTierCompilation","ph":"X","pid":1,"tid":10,"tdur":100000},
	{"name":"wasm.CompileLazy","ph":"X","pid":1,"tid":11,"tdur":2000},
	{"name":"wasm.TopTierCompilation","ph":"B","pid":1,"tid":10,"tdur":5000000}
	]`
	var evs []browser.TraceEvent
	if err := json.Unmarshal([]byte(raw), &evs); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	traceSummary(&b, evs)
	out := b.String()
	for _, want := range []string{
		"thread pools: 420 ms of CPU",
		"350.0 ms  v8/src/wasm/module-compiler.cc InitCompileJob",
		"70.0 ms  script_streamer.cc TryStartStreamingTask",
		"top tier 300 ms of CPU in 2 units, lazy baseline 2 ms in 1 functions",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"NotAPool", "NotARenderer"} {
		if strings.Contains(out, not) {
			t.Errorf("summary counts %s:\n%s", not, out)
		}
	}
	if i, j := strings.Index(out, "InitCompileJob"), strings.Index(out, "TryStartStreamingTask"); i > j {
		t.Errorf("sources not by CPU, most first:\n%s", out)
	}
}
