// Package simd writes a small WebAssembly module that hashes BLAKE3 chunk
// groups with WebAssembly SIMD (v128), for the service worker, whose Go
// code (compiled by Go's wasm backend, which emits no SIMD) hashes at
// about a fifth of its speed.
//
//	go run ./internal/blake3/simd/simdgen -o serviceworker/dist/blake3.wasm // make wasm
//
// The module is generated, not compiled from another language: Module
// emits its bytes with a tiny binary encoder (wasm.go) for the few
// instructions it uses, so building it needs Go only. It imports its
// memory as ("go", "mem"), which the worker script binds to the Go
// instance's exported memory, and exports one function,
//
//	group(in, out, counter i32)
//
// that hashes the 16 whole chunks (16 KiB, a bao16 group) at address in
// of that memory, the first being chunk number counter of its input, four
// chunks at a time in the four i32 lanes of v128 values, then their
// parents four at a time, and writes the chaining values of the group's
// two halves at out (512 bytes of scratch). Package blake3 (simd_js.go)
// passes Go addresses directly (no copy) and computes the last parent
// itself, with the ROOT flag when the group is the whole input. Partial
// groups, tails and parents above the group stay in Go, as does
// everything when the module is not installed.
//
// The module is tested against package blake3's Go code in that package's
// js/wasm tests, under Node with testdata/preload.js installing it as the
// worker script does (make test-wasm sets VERITY_BLAKE3_SIMD_WASM to the
// module's absolute path and NODE_OPTIONS=--require=<preload.js>).
//
// Specs: https://github.com/BLAKE3-team/BLAKE3-specs,
// https://webassembly.github.io/spec/core/binary/ and the SIMD opcodes of
// https://github.com/WebAssembly/simd/blob/main/proposals/simd/BinarySIMD.md.
package simd
