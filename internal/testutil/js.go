package testutil

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// JSFunctions returns the source of the named top-level functions (and
// consts, written `const NAME = ...;` on one line) of the script at path,
// in the order named: the pieces of the worker's script a test runs under
// Node.js.
func JSFunctions(t testing.TB, path string, names ...string) string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, n := range names {
		m := regexp.MustCompile(`(?ms)^function ` + regexp.QuoteMeta(n) + `\(.*?^}\n`).Find(src)
		if m == nil {
			m = regexp.MustCompile(`(?m)^const ` + regexp.QuoteMeta(n) + ` = .*;\n`).Find(src)
		}
		if m == nil {
			t.Fatalf("%s has no top-level function or const %s", path, n)
		}
		out.Write(m)
	}
	return out.String()
}

// RunNode runs prog under Node.js with in, as JSON, on its standard input,
// and decodes its standard output, JSON, into out.
func RunNode(t testing.TB, prog string, in, out any) {
	t.Helper()
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the worker's script is checked under Node.js, which `make build` installs: %v", err)
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nodeBin, "-e", prog)
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	if err := json.Unmarshal(got, out); err != nil {
		t.Fatalf("node's answer %q: %v", got, err)
	}
}
