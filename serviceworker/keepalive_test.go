package serviceworker

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil"
)

// loaderPart is the parts of verity.js that match res (each a regexp of
// whole lines), in that order, taken out of the loader's closure.
func loaderPart(t *testing.T, res ...string) string {
	t.Helper()
	src, err := os.ReadFile("verity.js")
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, re := range res {
		m := regexp.MustCompile(re).Find(src)
		if m == nil {
			t.Fatalf("verity.js has no %s", re)
		}
		out = append(out, m...)
	}
	return string(out)
}

// keepAliveJS is verity.js's keepAlive with its two constants.
func keepAliveJS(t *testing.T) string {
	t.Helper()
	return loaderPart(t, `(?m)^  var KEEP_EVERY_MS = .*;\n`, `(?m)^  var KEEP_IDLE_MS = .*;\n`, `(?ms)^  function keepAlive\(sw\) \{\n.*?^  \}\n`)
}

// pageHarnessJS runs parts of the loader under Node with a clock of its
// own: setTimeout and Date.now on it, advance(t) running the timers due up
// to t ms; window's listeners, which fire(target, type, ev) calls (on(target)
// adds to any other target's).
const pageHarnessJS = `
let now = 0;
const timers = [];
Date.now = () => now;
global.setTimeout = (fn, ms) => { const t = { at: now + ms, fn }; timers.push(t); return t; };
global.clearTimeout = (t) => { const i = timers.indexOf(t); if (i >= 0) timers.splice(i, 1); };
const advance = (t) => {
  for (;;) {
    timers.sort((a, b) => a.at - b.at);
    if (!timers.length || timers[0].at > t) break;
    const x = timers.shift();
    now = x.at;
    x.fn();
  }
  now = t;
};
const listeners = {};
const on = (target) => (type, fn) => { (listeners[target + ':' + type] ||= []).push(fn); };
const fire = (target, type, ev) => (listeners[target + ':' + type] || []).forEach((fn) => fn(ev || {}));
global.window = { addEventListener: on('window') };
`

// The page keeps its worker running with a message every 20 s while it is
// visible and was used within 5 minutes: a page left alone stops after 5
// minutes, one hidden at once; a use, a return into view or from the
// back/forward cache sends one at once and starts again. Run under Node
// with a clock of its own.
func TestKeepAlive(t *testing.T) {
	prog := pageHarnessJS + `
global.document = { visibilityState: 'visible', addEventListener: on('document') };
const pings = [];
const sw = { controller: { postMessage: (m) => pings.push([now / 1000, m.type]) } };
` + keepAliveJS(t) + `
const out = {};
keepAlive(sw);
advance(400000);
out.alone = pings.splice(0);
fire('window', 'scroll');
advance(450000);
out.used = pings.splice(0);
document.visibilityState = 'hidden';
fire('document', 'visibilitychange');
advance(600000);
fire('window', 'pointerdown');
advance(650000);
out.hidden = pings.splice(0);
document.visibilityState = 'visible';
fire('document', 'visibilitychange');
advance(665000);
out.shown = pings.splice(0);
fire('window', 'pagehide');
advance(700000);
out.hiddenPage = pings.splice(0);
fire('window', 'pageshow', { persisted: true });
advance(710000);
out.restored = pings.splice(0);
sw.controller = null;
advance(800000);
out.noController = pings.splice(0);
process.stdout.write(JSON.stringify(out));
`
	var out map[string][][2]any
	testutil.RunNode(t, prog, nil, &out)
	times := func(k string) []float64 {
		var ts []float64
		for _, p := range out[k] {
			if p[1] != "verity-keepalive" {
				t.Errorf("%s: message %v, want verity-keepalive", k, p[1])
			}
			ts = append(ts, p[0].(float64))
		}
		return ts
	}
	var every20 []float64
	for s := 20.0; s <= 300; s += 20 {
		every20 = append(every20, s)
	}
	cases := []struct {
		name, key string
		want      []float64
	}{
		{"a page nobody uses: every 20 s for 5 minutes, then none", "alone", every20},
		{"a scroll after that: one at once, then every 20 s", "used", []float64{400, 420, 440}},
		{"hidden, even when used", "hidden", nil},
		{"back into view: one at once, then every 20 s", "shown", []float64{650}},
		{"after pagehide", "hiddenPage", nil},
		{"restored from the back/forward cache", "restored", []float64{700}},
		{"no controller: nothing to post to", "noController", nil},
	}
	for _, c := range cases {
		if got := times(c.key); !slices.Equal(got, c.want) {
			t.Errorf("%s: pings at %v s, want %v", c.name, got, c.want)
		}
	}
}
