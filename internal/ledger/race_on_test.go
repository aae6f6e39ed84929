//go:build race

package ledger_test

// raceEnabled: the race detector slows the load test tenfold; it runs
// without it (make test runs this package both ways).
const raceEnabled = true
