package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// The floor rows: what a service worker costs on its own. A worker of a
// few lines, on an origin of its own (served by the bench), answers a
// fetch with the node's CAR stream for the same file over WebTransport,
// the raw row's request, with no Go, no verification, no receipts:
//
//   - floor_pipe hands the stream's readable to the Response: the browser
//     moves the bytes to the page without any script touching them;
//   - floor_js reads each chunk in the worker's script and enqueues it
//     unchanged into the Response's stream;
//   - floor_copy enqueues fresh 1 MiB copies instead: the least a worker
//     that hands the page the bytes it checked (not the buffers the
//     transport filled) can do;
//   - floor_raw is the raw row again, the page reading the stream itself.
//
// The four are measured in turn, run after run. Set beside each other
// they show how much of the worker row's distance to raw is the service
// worker's hop itself, which no work inside the worker can remove.

// floorWorkerJS is the floor's worker script. It keeps one WebTransport
// session per node URL; the fetch's query names the node, its
// certificate hash, the stream's target and the mode.
const floorWorkerJS = `'use strict';
const sessions = new Map();
function session(url, hash) {
  let p = sessions.get(url);
  if (!p) {
    const value = Uint8Array.from(atob(hash), c => c.charCodeAt(0));
    const wt = new WebTransport(url, {serverCertificateHashes: [{algorithm: 'sha-256', value}]});
    p = wt.ready.then(() => wt);
    p.catch(() => sessions.delete(url));
    wt.closed.then(() => sessions.delete(url), () => sessions.delete(url));
    sessions.set(url, p);
  }
  return p;
}
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  const u = new URL(e.request.url);
  if (u.pathname !== '/floor') return;
  e.respondWith((async () => {
    const q = u.searchParams;
    const wt = await session(q.get('wt'), q.get('hash'));
    const s = await wt.createBidirectionalStream();
    const w = s.writable.getWriter();
    w.write(new TextEncoder().encode('VERITY/1 GET ' + q.get('target') + '\r\n\r\n')).catch(() => {});
    w.close().catch(() => {});
    let body = s.readable;
    const chunk = +q.get('chunk');
    if (q.get('mode') === 'copy') {
      // Fresh chunks of chunk bytes, as a worker handing the page copies.
      const r = s.readable.getReader();
      let buf = null, at = 0;
      body = new ReadableStream({
        async pull(c) {
          for (;;) {
            const {value, done} = await r.read();
            if (done) {
              if (buf && at > 0) c.enqueue(buf.subarray(0, at));
              c.close();
              return;
            }
            let v = value;
            while (v.byteLength > 0) {
              if (!buf) { buf = new Uint8Array(chunk); at = 0; }
              const n = Math.min(v.byteLength, chunk - at);
              buf.set(v.subarray(0, n), at);
              at += n;
              v = v.subarray(n);
              if (at === chunk) { c.enqueue(buf); buf = null; return; }
            }
          }
        },
        cancel(reason) { return r.cancel(reason); },
      });
    } else if (q.get('mode') === 'js') {
      const r = s.readable.getReader();
      body = new ReadableStream({
        async pull(c) {
          const {value, done} = await r.read();
          if (done) c.close(); else c.enqueue(value);
        },
        cancel(reason) { return r.cancel(reason); },
      });
    }
    return new Response(body, {headers: {'content-type': 'application/octet-stream', 'cache-control': 'no-store'}});
  })());
});
`

// floorCopyChunk is the floor_copy row's chunk: the Go worker's hand-off
// chunks grow to 1 MiB on a long body (stream_js.go).
const floorCopyChunk = 1 << 20

// floorPage registers the floor's worker.
const floorPage = `<!doctype html><meta charset="utf-8"><title>floor</title>`

// floorRegisterJS registers the floor's worker and waits until it
// controls the page.
const floorRegisterJS = `async () => {
	if (navigator.serviceWorker.controller) return true;
	const claimed = new Promise(r => navigator.serviceWorker.addEventListener('controllerchange', () => r(true), {once: true}));
	await navigator.serviceWorker.register('/floor-sw.js', {scope: '/'});
	return Promise.race([claimed, new Promise(r => setTimeout(() => r(false), 10000))]);
}`

// floorRows measures the floor rows in b, which it leaves on the floor's
// origin: nodeURL and hashB64 are the node's WebTransport address and
// certificate hash, target the raw row's stream target, want the bytes
// that stream has at least.
func floorRows(ctx context.Context, cfg Config, b *browser.Browser, acct *cpuAccount, nodeURL, hashB64, target string, want int64, res *Results) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprint(w, floorPage)
		case "/floor-sw.js":
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprint(w, floorWorkerJS)
		default:
			// The worker answers /floor; reaching here means it did not.
			http.Error(w, "not answered by the floor's worker", http.StatusNotFound)
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	if err := b.Navigate(ctx, "http://"+ln.Addr().String()+"/"); err != nil {
		return err
	}
	ok, err := browser.Eval[bool](ctx, b, "("+floorRegisterJS+")()")
	if err != nil {
		return fmt.Errorf("floor worker: %w", err)
	}
	if !ok {
		return errors.New("floor worker: it did not control the page in 10 s")
	}
	mbps := func(ms float64) float64 { return float64(pageSize) / (ms / 1000) / 1e6 }
	// The rows in turn, run after run, so a change in the machine's load
	// falls on all of them; the first run of each opens its session.
	rows := []struct{ name, note string }{
		{"raw", "the raw row again, from the floor's page, measured in turn with the floor rows"},
		{"pipe", "the raw row's stream through a service worker of a few lines that hands it to the Response untouched (no Go, no verification)"},
		{"js", "the same, the worker's script reading each chunk and enqueueing it unchanged"},
		{"copy", fmt.Sprintf("the same, the worker's script enqueueing fresh copies of %d KiB (as a worker handing the page the bytes it checked)", floorCopyChunk>>10)},
	}
	out := make([][]float64, len(rows))
	for i := 0; i <= cfg.Runs; i++ {
		for j, row := range rows {
			name := "floor_" + row.name
			acct.row(name)
			if i > 0 {
				acct.begin(ctx)
			}
			var ms float64
			var size int64
			if row.name == "raw" {
				r, err := browser.Call[rawResult](ctx, b, rawWTJS, nodeURL, hashB64, target)
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				ms, size = r.Ms, r.Bytes
			} else {
				q := url.Values{"wt": {nodeURL}, "hash": {hashB64}, "target": {target}, "mode": {row.name}, "chunk": {strconv.Itoa(floorCopyChunk)}}
				r, err := browser.Call[browser.FetchResult](ctx, b, pageReadJS, "/floor?"+q.Encode(), &browser.FetchOptions{Cache: "no-store"})
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if r.Status != http.StatusOK || r.Error != "" {
					return fmt.Errorf("%s: status %d, error %q", name, r.Status, r.Error)
				}
				ms, size = r.Millis, r.Size
			}
			if i > 0 {
				acct.end(ctx, ms)
			}
			if size < want {
				return fmt.Errorf("%s: %d bytes, want the CAR of at least %d", name, size, want)
			}
			if i > 0 {
				out[j] = append(out[j], mbps(ms))
			}
		}
	}
	acct.endRow()
	for j, row := range rows {
		res.add("page_floor_"+row.name+"_webtransport", median(out[j]), "MB/s", row.note)
	}
	return nil
}
