// Package serviceworker embeds the browser side of Verity that is not Go
// code, and the built worker:
//
//   - verity.js, the loader behind the one tag a site adds
//     (<script src="/verity.js" async></script>). It registers /verity-sw.js
//     with scope "/" and never breaks the page: failures are only logged.
//     It also hosts the page-side bridge (a MessageChannel the worker can
//     ask for) through which page-only transports such as WebRTC reach the
//     worker, and window.verity.stats() / .reports().
//   - verity-sw.js, the service worker script: a template in which the
//     gateway replaces PlaceholderWASMURL and PlaceholderWASMExecURL with
//     content-hashed URLs, and PlaceholderBlake3SIMD with the BLAKE3 SIMD
//     module in base64 (instantiated on the Go instance's memory before Go
//     starts; without it, or without WebAssembly SIMD, Go hashes alone). It boots the Go worker (wasmclient/cmd/worker)
//     and sends every same-origin GET except /verity.js, /verity-sw.js and
//     /.verity/* through it; if the wasm cannot start, requests go to the
//     network (the gateway), so the page always loads.
//   - dist/verity.wasm, dist/wasm_exec.js and dist/blake3.wasm, built by
//     `make wasm`.
//
// Usage (gateway side):
//
//	js := bytes.ReplaceAll(serviceworker.WorkerJSTemplate(),
//		[]byte(serviceworker.PlaceholderWASMURL), []byte(wasmURL))
//	wasm, err := serviceworker.WASM() // ErrNotBuilt before `make build`
//
// See docs/protocol.md §6–7 for the contract between gateway and worker.
package serviceworker
