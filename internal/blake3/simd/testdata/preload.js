// Node preload for the js/wasm tests (make test-wasm): does for a Go test
// binary what verity-sw.js does for the worker. Once the Go instance is
// instantiated, and before it runs, the SIMD module at
// $VERITY_BLAKE3_SIMD_WASM (written by `make wasm`) is instantiated on its
// memory and its group function set as globalThis.__verityBlake3Group.
//
//   VERITY_BLAKE3_SIMD_WASM=serviceworker/dist/blake3.wasm \
//   NODE_OPTIONS=--require=$PWD/internal/blake3/simd/testdata/preload.js \
//   GOOS=js GOARCH=wasm go test -exec go_js_wasm_exec ./internal/blake3
'use strict';
const path = process.env.VERITY_BLAKE3_SIMD_WASM;
if (path) {
  const bytes = require('fs').readFileSync(path);
  const instantiate = WebAssembly.instantiate;
  WebAssembly.instantiate = async function (...args) {
    const result = await instantiate.apply(this, args);
    const mem = result.instance && result.instance.exports.mem;
    if (mem instanceof WebAssembly.Memory && !globalThis.__verityBlake3Group) {
      const simd = new WebAssembly.Instance(new WebAssembly.Module(bytes), { go: { mem } });
      globalThis.__verityBlake3Group = simd.exports.group;
    }
    return result;
  };
}
