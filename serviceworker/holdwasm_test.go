package serviceworker

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil"
)

// The page compiles the worker's wasm from the worker's Cache Storage once
// it has loaded, and holds the module until it is left: again for a new
// worker version's wasm, never for one it already holds, not after
// pagehide (a compile still under way then is dropped), again when the
// back/forward cache restores the page. A wasm whose Content-Type a proxy
// changed is compiled from its bytes. Run under Node with a clock of its
// own and stand-ins for Cache Storage and WebAssembly.
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
	prog := pageHarnessJS + `
const realImmediate = setImmediate;
// settle lets the promise chains run (Cache Storage and compiles answer
// at once).
const settle = async () => { for (let i = 0; i < 20; i++) await new Promise((r) => realImmediate(r)); };
global.document = { readyState: 'loading' };
const warned = [];
const warn = (m) => warned.push(m);
let stored = [];
const resp = (s) => ({ body: s.body, type: s.type, clone() { return resp(s); }, arrayBuffer: async () => s.body });
window.caches = global.caches = {
  has: async (name) => name === 'verity-wasm-v1' && stored.length > 0,
  open: async (name) => ({
    keys: async () => stored.map((s) => ({ url: s.url })),
    match: async (k) => { const s = stored.find((x) => x.url === k.url); return s ? resp(s) : undefined; },
  }),
};
const compiled = [];
global.WebAssembly = {
  compileStreaming: async (r) => {
    if (r.type !== 'application/wasm') throw new TypeError('Incorrect response MIME type');
    compiled.push(r.body);
    return { bytes: r.body };
  },
  compile: async (b) => { compiled.push('bytes:' + b); return { bytes: b }; },
};
const sw = { addEventListener: on('sw') };
const wasm = (v, type) => ({ url: 'https://site.test/.verity/wasm/' + v + '.wasm', body: v, type: type || 'application/wasm' });
` + loaderPart(t, `(?m)^  var WASM_CACHE = .*;\n`, `(?m)^  var HOLD_AFTER_MS = .*;\n`, `(?m)^  var HOLD_IDLE_MS = .*;\n`, `(?ms)^  function holdWasm\(sw\) \{\n.*?^  \}\n`) + `
(async () => {
  const out = {};
  const step = async (name, t) => { advance(t); await settle(); out[name] = [held(), compiled.splice(0)]; };
  stored = [wasm('v1')];
  const held = holdWasm(sw);
  await step('loading', 5000);
  fire('window', 'load');
  await step('loaded, not yet', 5400);
  await step('loaded', 5600);
  fire('sw', 'controllerchange');
  await step('same worker', 7000);
  stored = [wasm('v1'), wasm('v2')];
  fire('sw', 'controllerchange');
  await step('new worker', 8000);
  stored = [wasm('v3')];
  fire('sw', 'controllerchange');
  advance(8600); // the compile starts
  fire('window', 'pagehide');
  await step('left while compiling', 9000);
  fire('window', 'pageshow', { persisted: false });
  await step('shown, not restored', 10000);
  fire('window', 'pageshow', { persisted: true });
  await step('restored', 11000);
  fire('window', 'pagehide');
  stored = [wasm('v4', 'application/octet-stream')];
  fire('window', 'pageshow', { persisted: true });
  await step('changed Content-Type', 12000);
  fire('window', 'pagehide');
  stored = [];
  fire('window', 'pageshow', { persisted: true });
  await step('no wasm stored', 13000);
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
		{"shown, not restored", "", nil},
		{"restored", url("v3"), []string{"v3"}},
		{"changed Content-Type", url("v4"), []string{"bytes:v4"}},
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
