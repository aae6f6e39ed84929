package serviceworker

import (
	"bytes"
	"errors"
	"io/fs"
	"testing"
)

func TestEmbedded(t *testing.T) {
	if !bytes.Contains(LoaderJS(), []byte("register(SW_URL, { scope: '/' })")) {
		t.Error("verity.js does not register the worker with scope /")
	}
	tpl := WorkerJSTemplate()
	for _, p := range []string{PlaceholderWASMURL, PlaceholderWASMExecURL, PlaceholderBlake3SIMD} {
		if bytes.Count(tpl, []byte(p)) != 1 {
			t.Errorf("verity-sw.js: placeholder %s not found exactly once", p)
		}
	}
	wasm, err := WASM()
	switch {
	case errors.Is(err, ErrNotBuilt):
		t.Log("wasm not built; skipping its checks")
	case err != nil:
		t.Fatal(err)
	case !bytes.HasPrefix(wasm, []byte("\x00asm")):
		t.Error("dist/verity.wasm is not WebAssembly")
	}
	if m, err := Blake3SIMD(); err == nil && !bytes.HasPrefix(m, []byte("\x00asm")) {
		t.Error("dist/blake3.wasm is not WebAssembly")
	}
	if _, err := WASMExecJS(); err != nil && !errors.Is(err, ErrNotBuilt) {
		t.Fatal(err)
	}
	if _, err := fs.Stat(FS, "verity-sw.js"); err != nil {
		t.Error(err)
	}
}
