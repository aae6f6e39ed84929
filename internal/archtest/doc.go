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
//
// The checker is also run on synthetic import graphs to show that every
// rule can fail.
//
// The tests need the go command (the one `go test` puts first on PATH).
// They open every Go file of the module, so that a cached pass is
// rerun whenever one changes.
// The import rules take about 2 s.
package archtest
