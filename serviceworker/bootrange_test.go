package serviceworker

import (
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
