package serviceworker

import (
	"strconv"
	"testing"

	"github.com/verity-cdn/verity/internal/testutil"
)

// While the Go worker boots, the gateway serves a range in one piece of at
// most 1 MiB from where the player asked; what the piece cannot stand for
// (suffixes, several ranges, malformed or reversed ranges) waits for the
// Go worker, which answers it as the gateway would.
func TestBootRange(t *testing.T) {
	cases := map[string]string{
		"bytes=0-":                  "bytes=0-1048575",
		"bytes=0-99":                "bytes=0-99",
		"bytes=100-1048675":         "bytes=100-1048675",
		"bytes=100-1048676":         "bytes=100-1048675",
		"bytes=1933312-":            "bytes=1933312-2981887",
		" bytes=5-5 ":               "bytes=5-5",
		"bytes=-500":                "",
		"bytes=0-9,20-29":           "",
		"bytes=10-9":                "",
		"bytes=a-":                  "",
		"items=0-":                  "",
		"bytes=":                    "",
		"bytes=1234567890123456-":   "",
		"bytes=0-12345678901234567": "",
	}
	var in []string
	for v := range cases {
		in = append(in, v)
	}
	prog := testutil.JSFunctions(t, "verity-sw.js", "BOOT_RANGE_BYTES", "bootRange") + `
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => process.stdout.write(JSON.stringify(JSON.parse(input).map(bootRange))));
`
	var out []string
	testutil.RunNode(t, prog, in, &out)
	if len(out) != len(in) {
		t.Fatalf("node answered %d values of %d", len(out), len(in))
	}
	for i, v := range in {
		if out[i] != cases[v] {
			t.Errorf("bootRange(%q) = %q, want %q", v, out[i], cases[v])
		}
	}
}

// The cache answers a range of a cached file of 1000 bytes only in the
// forms the gateway and the Go worker answer the same simple way; the rest
// (If-Range, suffixes, several ranges, 416s, malformed or reversed ranges)
// goes on to the Go worker.
func TestCacheRange(t *testing.T) {
	type rng struct {
		Start int `json:"start"`
		End   int `json:"end"`
	}
	cases := []struct {
		value   string
		ifRange bool
		want    *rng
	}{
		{"bytes=0-", false, &rng{0, 999}},
		{"bytes=0-0", false, &rng{0, 0}},
		{"bytes=10-19", false, &rng{10, 19}},
		{"bytes=990-5000", false, &rng{990, 999}},
		{" bytes=999- ", false, &rng{999, 999}},
		{"bytes=0-", true, nil},
		{"bytes=1000-", false, nil},
		{"bytes=1000-1001", false, nil},
		{"bytes=-10", false, nil},
		{"bytes=0-9,20-29", false, nil},
		{"bytes=10-9", false, nil},
		{"bytes=a-", false, nil},
		{"items=0-", false, nil},
		{"bytes=", false, nil},
		{"bytes=1234567890123456-", false, nil},
	}
	type input struct {
		Value   string  `json:"value"`
		IfRange *string `json:"ifRange"`
	}
	var in []input
	for _, c := range cases {
		var ir *string
		if c.ifRange {
			s := `"bafy"`
			ir = &s
		}
		in = append(in, input{c.value, ir})
	}
	prog := testutil.JSFunctions(t, "verity-sw.js", "cacheRange") + `
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => process.stdout.write(JSON.stringify(JSON.parse(input).map((c) => cacheRange(c.value, c.ifRange, 1000)))));
`
	var out []*rng
	testutil.RunNode(t, prog, in, &out)
	if len(out) != len(in) {
		t.Fatalf("node answered %d values of %d", len(out), len(in))
	}
	for i, c := range cases {
		if (out[i] == nil) != (c.want == nil) || (out[i] != nil && *out[i] != *c.want) {
			t.Errorf("cacheRange(%q, If-Range %v) = %+v, want %+v", c.value, c.ifRange, out[i], c.want)
		}
	}
}

// A root's path map is bounded: a site whose rewrites answer any path
// (a single-page app's catch-all) adds one entry per path visited, and the
// whole index is written again on every store. The paths kept are the
// ones mapped last; mapping a path again makes it the newest.
func TestRootPathsBounded(t *testing.T) {
	prog := testutil.JSFunctions(t, "verity-sw.js", "MAX_ROOTS", "MAX_PATHS", "rootPaths", "setPath") + `
const idx = { roots: [], files: {} };
const paths = rootPaths(idx, 'bafyroot', true);
const n = MAX_PATHS + 500;
for (let i = 0; i < n; i++) setPath(paths, '/watch/' + i, { c: 'bafyfile' + i, t: 'text/html' });
setPath(paths, '/watch/600', { c: 'bafyagain', t: 'text/html' });
for (let i = n; i < n + 300; i++) setPath(paths, '/watch/' + i, { c: 'bafyfile' + i, t: 'text/html' });
const keys = Object.keys(paths);
process.stdout.write(JSON.stringify({
  max: MAX_PATHS, kept: keys.length, first: keys[0], last: keys[keys.length - 1],
  again: paths['/watch/600'] ? paths['/watch/600'].c : '', oldest: !!paths['/watch/0'],
}));
`
	var out struct {
		Max, Kept   int
		First, Last string
		Again       string
		Oldest      bool
	}
	testutil.RunNode(t, prog, nil, &out)
	if out.Max < 256 || out.Kept > out.Max {
		t.Fatalf("a root keeps %d paths, bound %d", out.Kept, out.Max)
	}
	if out.Kept != out.Max {
		t.Errorf("a root keeps %d paths after %d were mapped, want its bound %d", out.Kept, out.Max+800, out.Max)
	}
	if out.Oldest {
		t.Error("the first path mapped is still kept, past the bound")
	}
	if out.Last != "/watch/"+strconv.Itoa(out.Max+799) {
		t.Errorf("the newest path kept is %s, want the last mapped", out.Last)
	}
	if out.Again != "bafyagain" {
		t.Errorf("a path mapped again early and kept by the bound: got %q", out.Again)
	}
}
