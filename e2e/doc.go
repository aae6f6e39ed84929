// Package e2e holds Verity's whole-system tests: a devnet (gateway and two
// storage nodes on loopback ports, data in a temporary directory) visited by
// a real headless Chromium, driven through the DevTools protocol by package
// e2e/browser.
//
// The tests check, from the page's point of view:
//
//   - the first visit renders through the gateway (TestFirstVisitThroughGateway);
//   - once the worker controls the page, every asset comes from a node over
//     WebTransport, byte-equal to the site's files, and the gateway serves no
//     asset bytes (TestAssetsOverWebTransport);
//   - a block corrupt on a node's disk, or altered by a lying node, never
//     reaches the page, which still gets the right bytes, and the node is
//     reported (TestCorruptBlockOnDisk, TestBadBlockFromNodeIsCaught);
//   - without WebTransport the worker falls back to the gateway
//     (TestNoWebTransportFallsBackToGateway);
//   - a worker the browser stopped starts again on the next fetch or
//     navigation (TestWorkerColdRestart);
//   - the worker answers Range requests with 206 and only the covering
//     blocks, and bad, multiple or unsatisfiable ranges by the rules of
//     protocol.md §6.6 (TestWorkerRange, TestWorkerRangeBadInput);
//   - on the demo's video page, behind netem forwarders that give the nodes
//     10 ms and 1 MiB/s (so the player streams while it plays): the MP4
//     plays, a seek to its middle starts there without fetching the middle,
//     the HLS rendition plays through hls.js, and playback goes on when the
//     serving node is killed or the worker stopped mid-playback
//     (TestVideo*). The video files come from `make demo-media`; without
//     them these tests fail.
//
// Run them with `go test ./e2e/...`; they need Debian's chromium at
// /usr/bin/chromium (`make test-deps` installs it) and fail without it.
// The benchmark is e2e/cmd/bench (`make bench`).
package e2e
