package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/testutil"
)

// A worker stopped while a page of the site is open finds, when it starts
// again, its wasm compiled with the code it had compiled before: the page
// holds the compiled module (verity.js, holdWasm), and V8 keeps one module
// per renderer process for the same bytes, shared by the page and the
// worker. A trace of the restart shows it: the worker's boot and its
// first request through Go compile (lazily, function by function) next to
// none of their code. A page with data-keepalive="off" holds nothing:
// there the same restart, before and after, compiles hundreds of
// functions, which shows the trace sees them.
func TestRestartedWorkerFindsItsCompiledWasm(t *testing.T) {
	dir := siteWithQuietPage(t)
	e := newEnv(t, envConfig{demoDir: dir})
	e.controlled()
	css := fileOf(t, e.files, "style.css")
	e.fetchFile(css)

	heldWasm := func() string {
		u, err := browser.Eval[string](e.ctx(10*time.Second), e.b, `window.verity ? window.verity.heldWasm() : ''`)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	// restart stops the worker, starts it again with a keepalive (as a
	// page coming back into view does), fetches a file through the booted
	// Go worker, and counts the wasm functions compiled lazily meanwhile.
	restart := func(what string) int {
		tr, err := e.b.StartTrace(e.ctx(20*time.Second), []string{"v8.wasm", "disabled-by-default-v8.wasm.detailed"})
		if err != nil {
			t.Fatal(err)
		}
		stopped := false
		defer func() {
			if !stopped {
				tr.Stop(e.ctx(40 * time.Second))
			}
		}()
		e.stopWorkers()
		if err := e.b.Keepalive(e.ctx(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, "the Go worker booted again, "+what, func() bool { return e.cacheStats().Running })
		res := e.fetchFile(css)
		if tr, _ := res.Timing("verity"); tr != "webtransport" {
			t.Errorf("%s: /style.css after the boot: Server-Timing %q, want a node's", what, res.Headers["server-timing"])
		}
		raw, err := tr.Stop(e.ctx(40 * time.Second))
		stopped = true
		if err != nil {
			t.Fatal(err)
		}
		evs, err := browser.ParseTrace(raw)
		if err != nil {
			t.Fatal(err)
		}
		lazy := 0
		for _, ev := range evs {
			if ev.Name == "wasm.CompileLazy" && (ev.Ph == "X" || ev.Ph == "B") {
				lazy++
			}
		}
		boot := e.cacheStats().Boot
		t.Logf("%s: %d functions compiled lazily; the boot's start to ready %.1f ms (%s)", what, lazy, boot["ready"]-boot["start"], describe(boot))
		return lazy
	}

	// On the opted-out page, the module of the page before it collected,
	// nothing holds the module while the worker is stopped.
	quietRestart := func(what string) int {
		if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/quiet/"); err != nil {
			t.Fatal(err)
		}
		if err := e.b.CollectGarbage(e.ctx(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testutil.Scale(3 * time.Second)) // past the time a holding page would compile
		if u := heldWasm(); u != "" {
			t.Fatalf("the data-keepalive=off page holds the wasm %s", u)
		}
		return restart(what)
	}
	unheld := quietRestart("nothing holding the module")

	e.visit()
	var held string
	testutil.Eventually(t, 20*time.Second, "the page holding the worker's compiled wasm", func() bool {
		held = heldWasm()
		return held != ""
	})
	if !strings.Contains(held, "/.verity/wasm/") {
		t.Errorf("the page holds %q, want the worker's wasm under /.verity/wasm/", held)
	}
	// Only what the page holds outlives a collection.
	if err := e.b.CollectGarbage(e.ctx(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	withHeld := restart("the page holding the module")

	// Nothing holding it again: a browser that kept compiled code by
	// other means would make this restart cheap too.
	unheldAgain := quietRestart("nothing holding the module, again")

	if min(unheld, unheldAgain) < 50 {
		t.Fatalf("a restart with nothing holding the module compiled only %d then %d functions lazily: the trace cannot tell a held module from none", unheld, unheldAgain)
	}
	if withHeld > min(unheld, unheldAgain)/4 {
		t.Errorf("the restart with the page holding the module compiled %d functions lazily, against %d and %d with nothing holding it: the worker did not find its compiled code", withHeld, unheld, unheldAgain)
	}
}
