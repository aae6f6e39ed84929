// Package browser drives Debian's Chromium through the DevTools protocol for
// Verity's whole-system tests and benchmarks.
//
// A Browser is one headless Chromium process with a fresh profile directory,
// started with the flags the tests need (WebTransport to 127.0.0.1 with
// serverCertificateHashes works with the defaults). It has one tab; helpers on
// the Browser act on that tab:
//
//	b, err := browser.Start(ctx, browser.Config{UserDataDir: dir})
//	if err != nil { ... }
//	defer b.Close()
//	err = b.Navigate(ctx, "http://demo.localhost:8080/")
//	err = b.WaitController(ctx) // the service worker controls the page
//	res, err := b.Fetch(ctx, "/style.css", nil) // SHA-256 computed in the page
//	stats, err := b.WorkerStats(ctx)            // the worker's verity-stats
//	err = b.StopAllWorkers(ctx)                 // cold-stop every service worker
//
// Start makes the calling process a child subreaper (Linux), so the helper
// processes Chromium leaves behind are reparented to it; Close kills the
// browser's process group and every process that still uses its profile
// directory, then reaps them, so repeated runs leave no zombies.
//
// Scrape reads a Prometheus text exposition (a /metrics URL) into Metrics,
// whose Sum adds the samples of a metric whose labels match.
//
// Errors: ErrNoBrowser when the Chromium binary is missing (the tests fail
// with it, they never skip), ErrTimeout (wrapped with what was awaited) when
// a bounded wait ends, and *JSError when the page's script throws.
package browser
