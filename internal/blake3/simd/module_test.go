package simd

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestLEB128(t *testing.T) {
	for _, c := range []struct {
		u    uint64
		want []byte
	}{{0, []byte{0}}, {127, []byte{0x7f}}, {128, []byte{0x80, 1}}, {173, []byte{0xad, 1}}, {16384, []byte{0x80, 0x80, 1}}} {
		if got := uleb(nil, c.u); !bytes.Equal(got, c.want) {
			t.Errorf("uleb(%d) = %x, want %x", c.u, got, c.want)
		}
	}
	for _, c := range []struct {
		s    int64
		want []byte
	}{{0, []byte{0}}, {63, []byte{0x3f}}, {64, []byte{0xc0, 0}}, {-1, []byte{0x7f}}, {-64, []byte{0x40}}, {-65, []byte{0xbf, 0x7f}}, {4096, []byte{0x80, 0x20}}} {
		if got := sleb(nil, c.s); !bytes.Equal(got, c.want) {
			t.Errorf("sleb(%d) = %x, want %x", c.s, got, c.want)
		}
	}
}

// TestModuleValid: the module is the same on every call, and Node's V8
// (where installed) validates it and sees its one import and export. Its
// hashing is tested against the Go code in package blake3's js/wasm tests.
func TestModuleValid(t *testing.T) {
	m := Module()
	if !bytes.Equal(m, Module()) || !bytes.HasPrefix(m, []byte("\x00asm\x01\x00\x00\x00")) {
		t.Fatal("Module is not a stable WebAssembly binary")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node to validate the module with")
	}
	cmd := exec.Command(node, "-e", `
const b = require('fs').readFileSync(0);
if (!WebAssembly.validate(b)) { console.log('invalid'); process.exit(1); }
const m = new WebAssembly.Module(b);
console.log(JSON.stringify([WebAssembly.Module.imports(m), WebAssembly.Module.exports(m)]));`)
	cmd.Stdin = bytes.NewReader(m)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v: %s", err, out)
	}
	want := `[[{"module":"go","name":"mem","kind":"memory"}],[{"name":"group","kind":"function"}]]`
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("imports and exports %s, want %s", got, want)
	}
}
