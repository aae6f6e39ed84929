package serviceworker

import (
	"embed"
	"errors"
	"io/fs"
)

//go:embed verity.js verity-sw.js all:dist
var files embed.FS

// Placeholders in the worker script that the gateway replaces with the
// content-hashed URLs of the wasm and of wasm_exec.js, and with the BLAKE3
// SIMD module's bytes in base64 (empty when it was not built).
const (
	PlaceholderWASMURL     = "__VERITY_WASM_URL__"
	PlaceholderWASMExecURL = "__VERITY_WASM_EXEC_URL__"
	PlaceholderBlake3SIMD  = "__VERITY_BLAKE3_SIMD__"
)

// ErrNotBuilt: the wasm worker (or wasm_exec.js) was not built into dist/.
var ErrNotBuilt = errors.New("serviceworker: wasm not built: run make build")

// FS holds verity.js, verity-sw.js and dist/ (verity.wasm, wasm_exec.js,
// blake3.wasm when built).
var FS fs.FS = files

// LoaderJS returns verity.js, the loader behind the one script tag.
func LoaderJS() []byte { return mustRead("verity.js") }

// WorkerJSTemplate returns verity-sw.js with its placeholders unreplaced.
func WorkerJSTemplate() []byte { return mustRead("verity-sw.js") }

// WASM returns the worker's Go wasm, or ErrNotBuilt.
func WASM() ([]byte, error) { return readDist("dist/verity.wasm") }

// Blake3SIMD returns the BLAKE3 WebAssembly SIMD module
// (internal/blake3/simd), or ErrNotBuilt.
func Blake3SIMD() ([]byte, error) { return readDist("dist/blake3.wasm") }

// WASMExecJS returns Go's wasm_exec.js matching the wasm, or ErrNotBuilt.
func WASMExecJS() ([]byte, error) { return readDist("dist/wasm_exec.js") }

func readDist(name string) ([]byte, error) {
	b, err := files.ReadFile(name)
	if err != nil || len(b) == 0 {
		return nil, ErrNotBuilt
	}
	return b, nil
}

// mustRead reads a file embedded at build time; the go:embed directive
// guarantees it exists.
func mustRead(name string) []byte {
	b, err := files.ReadFile(name)
	if err != nil {
		return nil
	}
	return b
}
