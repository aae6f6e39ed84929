// Package wasmclient is the Go side of the Verity service worker: it serves
// a site origin's GET requests from storage nodes, verifying every block
// before a byte reaches the page, and falls back to the gateway.
//
// The core (Client, Fetch, the failover body, sessions, stats) is plain Go
// and runs natively, so it is tested with `go test` against real CARs. The
// browser parts live in _js.go files: the WebTransport dialer, the fetch
// transport, session loader and reporter, and Worker, which turns a JS
// Request into a Promise<Response> whose body is a ReadableStream of
// verified bytes; reads from the network and chunks to the page go through
// small JavaScript helpers (jsio_js.go), one call across the boundary each.
// Native twins (HTTPTransport, HTTPSessionLoader,
// HTTPReporter) live in _notjs.go files. The package must stay small in
// wasm: it does not import net/http, net or any IPFS library.
//
// Usage (native):
//
//	c, err := wasmclient.New(wasmclient.Config{
//		Session:    &wasmclient.HTTPSessionLoader{Origin: origin},
//		Transports: []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: d}},
//		Fallback:   &wasmclient.HTTPTransport{Origin: origin},
//		Reporter:   &wasmclient.HTTPReporter{Origin: origin},
//	})
//	resp, err := c.Fetch(ctx, wasmclient.FetchRequest{Path: "/app.js"})
//	if err != nil {
//		resp = wasmclient.ErrorResponse(err) // 404, 502, ...
//	}
//	defer resp.Body.Close()
//	io.Copy(w, resp.Body) // verified bytes; an error, never a short body
//
// In the worker (GOOS=js): w, _ := NewWorker(WorkerConfig{}); self.__verity =
// w.Export().
//
// # Sources and failover
//
// For each request the sources are every node of the session over each of
// Config.Transports, then Config.Fallback (the gateway's trustless endpoint).
// A source that fails (unreachable, bad status, a block that does not
// verify, truncation, no progress within IdleTimeout) is reported through
// Config.Reporter and skipped for DropFor; the body resumes from the next
// source with entity-bytes from the first byte not yet delivered. A 404
// status only moves on. A source whose response head has not come within
// QuietTimeout while another source is left is given up for the next one:
// not reported, but skipped for DropFor and scored slow
// (Scores.ObserveOpen); it is asked again, and waited for, only if every
// other source fails. A source delivering a body below its floor (MinRate,
// or an eighth of the best throughput measured lately for a node left to
// ask, if more: Scores.FreshThroughput; past a slack of QuietTimeout of the reader waiting) is left
// mid-body, once per body, for a source of another node or the gateway to
// deliver the rest, and asked again last like a quiet one; but it is not
// reported, and is skipped and scored only when the next source delivers
// at 4 times that floor or more (else the visitor's link may be the slow
// part). The parallel body (ParallelThreshold and up) hedges its slow
// segments instead. Transports report statuses as *wire.StatusError and a missing
// address as ErrNoAddress.
//
// # Parallel fetch, hedging and scores
//
// A body (or range) of at least ParallelThreshold bytes is fetched from up
// to MaxParallel nodes at once, in block-aligned segments of SegmentSize
// asked as entity-bytes, verified block by block and returned in order (a
// transport that is a NodeLaner, as FramedTransport with Lanes set, fetches
// several segments from one node at once: WebRTC, WebRTCLanes);
// at most ReadAheadSegments segments are held, so memory follows the
// window, not the file (parallel.go). A segment whose node delivers nothing
// for its hedge delay, or less than its floor for QuietTimeout (MinRate, or
// an eighth of another of the body's nodes' rate in the body or, not
// measured in it, its fresh score, if more; then only by a node that delivered its last segment of
// the body at 4 times the floor, or once per body by one not measured in
// it), is asked of another node as well; the first verified block wins
// and the other stream is cancelled, and a lane hedged for its rate takes
// no new segment while another runs (it runs again, before the gateway,
// when no other is left). A failed node is reported
// and its segment resumes elsewhere, the gateway last. Scores (scores.go)
// keep each node's RTT, throughput (of parallel segments, and of bodies
// the reader waited on) and decaying error count: they order the sources
// (by the time to a body's first 64 KiB), set hedge delays, are persisted through Config.ScoreStore (Cache
// Storage in the worker) and posted through Config.ScoreReporter
// (POST /.verity/v1/scores) for the coordinator's router.
//
// # Paths, types and ranges
//
// Request paths, Content-Type and Range/If-Range follow internal/webfile,
// the same rules as the gateway's first visit. FetchRequest.Range is the
// raw Range header: a single range is fetched as entity-bytes (only the
// blocks covering it travel and are verified) and answered 206 with
// Content-Range; an unsatisfiable one 416 with "bytes */size"; several
// ranges or a malformed header the full 200 body. If-Range other than the
// entity's strong ETag turns the request into a full one.
//
// # Config
//
// Zero values are defaults: OpenTimeout and IdleTimeout 10 s, QuietTimeout
// 3 s, MinRate 64 KiB/s, DropFor 1 min,
// SessionTTL 30 s (when the session has no ttl), History 200 records,
// Logger discards, Now is time.Now; ParallelThreshold 16 MiB, SegmentSize
// 2 MiB, ReadAheadSegments 6, MaxParallel 3, hedge delays within
// [200 ms, 3 s], scores saved at most every 10 s and reported at most once
// a minute.
//
// # Errors
//
// Fetch returns ErrBadPath (400), ErrNotFound (404), ErrUnsupported (501),
// ErrSession (503) or a *FetchError matching ErrNoSource (502); HTTPStatus
// maps any of them, ErrorResponse builds the text response. A body that
// cannot be completed fails with a *FetchError; a closed body with ErrClosed.
//
// Payments: the Client asks the gateway for a voucher with a fresh session
// key (KeyedSessionLoader), sends it on node streams (PaidTransport) and
// signs a receipt per verified block's worth, sent back on the stream
// (docs/protocol.md §3.1, docs/payments.md). Config.NoPayments turns it
// off.
//
// The behaviour is specified in docs/protocol.md §7 (parallel fetch §7.8,
// scores §7.9 and §6.8).
package wasmclient
