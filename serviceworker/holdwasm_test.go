package serviceworker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil"
)

// The page compiles the worker's wasm, the entry of the worker's Cache
// Storage that the active worker marked as the one it runs, once it has
// loaded and is idle, and
// holds the module until it is left or hidden for long: again for a new
// worker version's wasm, never for one it already holds, whatever other
// entries the cache has; not after pagehide, neither from a compile under
// way then nor from one waiting for the idle callback; again when the
// back/forward cache restores the page or a long-hidden page is shown. A
// wasm whose Content-Type a proxy changed is compiled from its bytes;
// nothing is held without a worker's mark, an entry or a 200. Run under
// Node with a clock of its own and stand-ins for Cache Storage and
// WebAssembly.
func TestHoldWasm(t *testing.T) {
	page := loaderPart(t, `(?m)^  var WASM_CACHE = .*;\n`)
	sw, err := os.ReadFile("verity-sw.js")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`'[^']+'`).FindString(page)
	if name == "" || !strings.Contains(string(sw), "const WASM_CACHE = "+name+";") {
		t.Fatalf("verity.js reads the worker's wasm from the cache %s, which verity-sw.js does not name its WASM_CACHE", name)
	}
	mark := regexp.MustCompile(`'[^']+'`).FindString(loaderPart(t, `(?m)^  var WASM_CURRENT = .*;\n`))
	if mark == "" || !strings.Contains(string(sw), "const WASM_CURRENT = "+mark+";") {
		t.Fatalf("verity.js reads which wasm the worker runs from %s, which verity-sw.js does not name its WASM_CURRENT", mark)
	}
	prog := pageHarnessJS + `
const realImmediate = setImmediate;
// settle lets the promise chains run (Cache Storage and compiles answer
// at once).
const settle = async () => { for (let i = 0; i < 30; i++) await new Promise((r) => realImmediate(r)); };
global.document = { readyState: 'loading', visibilityState: 'visible', addEventListener: on('document') };
window.requestIdleCallback = (fn) => setTimeout(fn, 50);
window.cancelIdleCallback = (h) => clearTimeout(h);
const warned = [];
const warn = (m) => warned.push(m);
const url = (v) => 'https://site.test/.verity/wasm/' + v + '.wasm';
let stored = [];
let runs = null; // the version the active worker marked as the one it runs
const resp = (s) => ({ body: s.body, type: s.type, ok: s.ok, clone() { return resp(s); }, arrayBuffer: async () => s.body });
window.caches = global.caches = {
  has: async (name) => name === 'verity-wasm-v1' && (stored.length > 0 || runs !== null),
  open: async () => ({
    match: async (u) => {
      if (u === '/.verity/wasm/current') return runs === null ? undefined : { text: async () => url(runs) };
      const s = stored.find((x) => x.url === u);
      return s ? resp(s) : undefined;
    },
  }),
};
const compiled = [];
let gate = null; // while set, compiles wait for it
global.WebAssembly = {
  compileStreaming: async (r) => {
    if (r.type !== 'application/wasm') throw new TypeError('Incorrect response MIME type');
    compiled.push(r.body);
    if (gate) await gate.p;
    return { bytes: r.body };
  },
  compile: async (b) => { compiled.push('bytes:' + b); return { bytes: b }; },
};
const sw = { addEventListener: on('sw') };
const wasm = (v, type, ok) => ({ url: url(v), body: v, type: type || 'application/wasm', ok: ok !== false });
` + loaderPart(t, `(?m)^  var WASM_CACHE = .*;\n`, `(?m)^  var HOLD_AFTER_MS = .*;\n`, `(?m)^  var HOLD_IDLE_MS = .*;\n`,
		`(?m)^  var WASM_CURRENT = .*;\n`, `(?m)^  var HOLD_HIDDEN_MS = .*;\n`, `(?ms)^  function holdWasm\(sw\) \{\n.*?^  \}\n`) + `
(async () => {
  const out = {};
  const step = async (name, t) => { advance(t); await settle(); advance(t); await settle(); out[name] = [held(), compiled.splice(0)]; };
  stored = [wasm('v1')];
  runs = 'v1';
  const held = holdWasm(sw);
  await step('loading', 5000);
  document.readyState = 'complete';
  fire('window', 'load');
  await step('loaded, not yet', 5400);
  await step('loaded', 6000);
  fire('sw', 'controllerchange');
  await step('same worker', 7000);
  stored = [wasm('v2'), wasm('v1')]; // an old worker's entry put again after the new one's
  runs = 'v2';
  fire('sw', 'controllerchange');
  await step('new worker', 8000);
  stored = [wasm('v3')];
  runs = 'v3';
  fire('sw', 'controllerchange');
  gate = {};
  gate.p = new Promise((r) => { gate.open = r; });
  advance(8560);
  await settle(); // the compile starts, and waits
  fire('window', 'pagehide');
  gate.open();
  gate = null;
  await step('left while compiling', 9000);
  fire('window', 'pageshow', { persisted: true });
  advance(9520); // the idle callback is asked for
  fire('window', 'pagehide');
  await step('left while waiting for idle', 12000);
  fire('window', 'pageshow', { persisted: false });
  await step('shown, not restored', 13000);
  fire('window', 'pageshow', { persisted: true });
  await step('restored', 14000);
  document.visibilityState = 'hidden';
  fire('document', 'visibilitychange');
  await step('hidden a while', 14000 + 29 * 60000);
  await step('hidden long', 14000 + 31 * 60000);
  document.visibilityState = 'visible';
  fire('document', 'visibilitychange');
  await step('shown again', 15000 + 31 * 60000);
  const t0 = 20000 + 31 * 60000;
  fire('window', 'pagehide');
  stored = [wasm('v4', 'application/octet-stream')];
  runs = 'v4';
  fire('window', 'pageshow', { persisted: true });
  await step('changed Content-Type', t0);
  fire('window', 'pagehide');
  stored = [wasm('v5', 'application/wasm', false)];
  runs = 'v5';
  fire('window', 'pageshow', { persisted: true });
  await step('not a 200', t0 + 1000);
  fire('window', 'pagehide');
  stored = [wasm('v6')];
  runs = null;
  fire('window', 'pageshow', { persisted: true });
  await step('no worker marked its wasm', t0 + 10000);
  fire('window', 'pagehide');
  stored = [];
  runs = 'v6';
  fire('window', 'pageshow', { persisted: true });
  await step('no wasm stored', t0 + 11000);
  out.warned = warned;
  process.stdout.write(JSON.stringify(out));
})();
`
	var out map[string]any
	testutil.RunNode(t, prog, nil, &out)
	url := func(v string) string { return "https://site.test/.verity/wasm/" + v + ".wasm" }
	cases := []struct {
		step     string
		held     string
		compiled []string
	}{
		{"loading", "", nil},
		{"loaded, not yet", "", nil},
		{"loaded", url("v1"), []string{"v1"}},
		{"same worker", url("v1"), nil},
		{"new worker", url("v2"), []string{"v2"}},
		{"left while compiling", "", []string{"v3"}},
		{"left while waiting for idle", "", nil},
		{"shown, not restored", "", nil},
		{"restored", url("v3"), []string{"v3"}},
		{"hidden a while", url("v3"), nil},
		{"hidden long", "", nil},
		{"shown again", url("v3"), []string{"v3"}},
		{"changed Content-Type", url("v4"), []string{"bytes:v4"}},
		{"not a 200", "", nil},
		{"no worker marked its wasm", "", nil},
		{"no wasm stored", "", nil},
	}
	for _, c := range cases {
		got, _ := out[c.step].([]any)
		if len(got) != 2 {
			t.Fatalf("%s: no result (%v)", c.step, out[c.step])
		}
		var comp []string
		for _, v := range got[1].([]any) {
			comp = append(comp, v.(string))
		}
		if got[0] != c.held || !slices.Equal(comp, c.compiled) {
			t.Errorf("%s: holds %q after compiling %q, want %q after %q", c.step, got[0], comp, c.held, c.compiled)
		}
	}
	if w, _ := out["warned"].([]any); len(w) != 0 {
		t.Errorf("warnings: %v", w)
	}
}
