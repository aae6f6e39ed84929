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
