// Package archtest holds no code: its tests check the house rules that
// the compiler does not, so that breaking one fails `go test ./...` with a
// message naming the offender.
//
//   - Import rules (imports_test.go, the table in rules_test.go): which
//     parts of the module may not import which, directly or through any
//     chain of imports. The module's packages are listed with
//     `go list -deps -json` for GOOS=linux (every package) and for
//     GOOS=js GOARCH=wasm (the worker, ./wasmclient/..., and every
//     package it links), and a broken rule is reported with the import
//     chain that pulls the forbidden package in. Test-only imports are
//     not checked. docs/architecture.md shows the same table; a test
//     fails when the two differ and prints the table to paste.
//   - The worker's link set (worker_test.go): ./wasmclient/cmd/worker is
//     built for js/wasm with its symbols kept, the function names are read
//     from the wasm's "name" section, and any function of fmt, reflect,
//     os, internal/poll, encoding/hex, crypto/sha256, crypto/sha512,
//     crypto/ed25519,
//     crypto/internal/fips140..., net/http, net/url, encoding/json or the
//     IPFS and multiformats libraries fails the test, named. Those are
//     heavy in wasm (see docs/architecture.md); the worker's packages
//     have small stdlib-only twins (internal/errfmt, internal/sha256,
//     internal/sha512, internal/cid, ...).
//
// Each checker is also run on synthetic inputs (an import graph, a list
// of names, hand-made wasm binaries) to show that every rule can fail.
//
// The tests need the go command (the one `go test` puts first on PATH).
// They open every Go file of the module, so that a cached pass is
// rerun whenever one changes.
// The import rules take about 2 s; building the worker takes up to 20 s
// with a cold build cache and is skipped with -short.
package archtest
