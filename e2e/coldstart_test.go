package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/serviceworker"
)

// After the browser stops the worker (as it does when the worker is idle),
// the next fetch and the next navigation start it again: the wasm is
// instantiated anew and still serves verified bytes from a node.
func TestWorkerColdRestart(t *testing.T) {
	e := newEnv(t, envConfig{})
	e.controlled()
	css := siteFile{}
	for _, f := range e.files {
		if f.Path == "style.css" {
			css = f
		}
	}
	if css.Path == "" {
		t.Fatalf("the demo site has no style.css")
	}
	ids := e.nodeIDs()

	// A request only the worker that is about to stop has seen.
	const marker = "before-stop"
	if _, err := e.b.Fetch(e.ctx(30*time.Second), "/style.css?"+marker, nil); err != nil {
		t.Fatal(err)
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	markerSeen := hasURL(stats.Requests, marker)

	if err := e.b.StopAllWorkers(e.ctx(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	vs, err := e.b.WorkerVersions(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.RunningStatus != serviceworker.VersionRunningStatusStopped {
			t.Fatalf("after stopAllWorkers worker %s is %s", v.ScriptURL, v.RunningStatus)
		}
	}

	// A fetch wakes the worker, which serves it from a node.
	res := e.fetchFile(css)
	if tr, _ := res.Timing("verity"); tr != "webtransport" {
		t.Errorf("/style.css after a cold start: Server-Timing %q, want verity=webtransport", res.Headers["server-timing"])
	}
	if n, _ := res.Timing("node"); !ids[n] {
		t.Errorf("/style.css after a cold start: node %q is not one of %v", n, ids)
	}
	if running := runningWorkers(t, e); running == 0 {
		t.Errorf("no worker is running after the fetch")
	}
	if markerSeen {
		stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if hasURL(stats.Requests, marker) {
			t.Errorf("the worker's stats still list the request made before the stop: it was not restarted")
		}
	} else {
		t.Logf("verity-stats does not keep query strings; the restart is checked through the DevTools worker status only")
	}

	// So does a navigation, after another stop.
	if err := e.b.StopAllWorkers(e.ctx(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/about/"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.b.Controlled(e.ctx(5 * time.Second)); err != nil || !ok {
		t.Fatalf("after a cold start the navigation is not controlled by the worker (controlled=%v, err=%v)", ok, err)
	}
	rs, err := e.b.Resources(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) == 0 || rs[0].EntryType != "navigation" {
		t.Fatalf("no navigation entry")
	}
	if tr, _ := rs[0].Timing("verity"); tr != "webtransport" {
		t.Errorf("navigation to /about/ after a cold start: Server-Timing %s, want verity=webtransport", describe(rs[0].ServerTiming))
	}
	e.visitTitle("about/index.html")
}

func hasURL(rs []browserRequest, part string) bool {
	for _, r := range rs {
		if strings.Contains(r.URL, part) {
			return true
		}
	}
	return false
}

func runningWorkers(t *testing.T, e *env) int {
	t.Helper()
	vs, err := e.b.WorkerVersions(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range vs {
		if v.RunningStatus == serviceworker.VersionRunningStatusRunning {
			n++
		}
	}
	return n
}
