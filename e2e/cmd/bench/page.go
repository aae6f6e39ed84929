package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
)

// session is the part of /.verity/v1/session the bench reads.
type session struct {
	Root  string `json:"root"`
	Nodes []struct {
		ID           string   `json:"id"`
		WebTransport string   `json:"webtransport"`
		CertHashes   []string `json:"certHashes"`
	} `json:"nodes"`
}

// startTiming is what registerJS returns.
type startTiming struct {
	ActiveMs  float64 `json:"activeMs"`
	ControlMs float64 `json:"controlMs"` // -1: the worker did not claim the page
}

// registerJS registers the worker from an uncontrolled page of the origin
// and times register → active → controlling.
const registerJS = `async () => {
	const t0 = performance.now();
	const claimed = new Promise(r => navigator.serviceWorker.addEventListener('controllerchange', r, {once: true}));
	await navigator.serviceWorker.register('/verity-sw.js', {scope: '/'});
	await navigator.serviceWorker.ready;
	const active = performance.now() - t0;
	const ok = await Promise.race([claimed.then(() => true), new Promise(r => setTimeout(() => r(false), 10000))]);
	return {activeMs: active, controlMs: ok ? performance.now() - t0 : -1};
}`

// rawWTJS reads a node's CAR stream for target over a WebTransport stream
// from the page, with no worker and no verification, and times it from the
// request to the last byte (the session is set up before).
const rawWTJS = `async (url, hashB64, target) => {
	const value = Uint8Array.from(atob(hashB64), c => c.charCodeAt(0));
	const wt = new WebTransport(url, {serverCertificateHashes: [{algorithm: 'sha-256', value}]});
	await wt.ready;
	const t0 = performance.now();
	const s = await wt.createBidirectionalStream();
	const w = s.writable.getWriter();
	await w.write(new TextEncoder().encode('VERITY/1 GET ' + target + '\r\n\r\n'));
	await w.close();
	const r = s.readable.getReader();
	let n = 0;
	for (;;) {
		const {value, done} = await r.read();
		if (done) break;
		n += value.byteLength;
	}
	const ms = performance.now() - t0;
	wt.close();
	return {bytes: n, ms};
}`

// pageReadJS fetches url in the page and counts its body's bytes through
// a reader, keeping nothing: the page work of rawWTJS's loop. Its result
// is a browser.FetchResult without the SHA-256.
const pageReadJS = `async (url, init) => {
	const t0 = performance.now();
	const r = await fetch(url, init);
	const headers = {};
	r.headers.forEach((v, k) => { headers[k] = v; });
	let size = 0, error = '';
	try {
		const rd = r.body.getReader();
		for (;;) {
			const {value, done} = await rd.read();
			if (done) break;
			size += value.byteLength;
		}
	} catch (e) { error = String(e); }
	return {url: r.url, status: r.status, headers, size, error, ms: performance.now() - t0};
}`

type rawResult struct {
	Bytes int64   `json:"bytes"`
	Ms    float64 `json:"ms"`
}

// pageSpeed measures, in Chromium, the worker's start and the throughput of
// the 32 MiB asset into the page by three routes.
func pageSpeed(ctx context.Context, cfg Config, d *devnet.Devnet, wantSHA, tmp string, res *Results) error {
	site := strings.TrimRight(d.SiteURL(devnet.SiteName), "/")
	var sess session
	if err := getJSON(ctx, site+"/.verity/v1/session", &sess); err != nil {
		return err
	}
	if len(sess.Nodes) == 0 || len(sess.Nodes[0].CertHashes) == 0 {
		return fmt.Errorf("session lists no node with a certificate hash: %+v", sess)
	}

	// Worker start, each in a fresh profile, from an uncontrolled page of
	// the origin (the session JSON: a document without the loader).
	var active, control []float64
	var b *browser.Browser
	for i := range cfg.Runs {
		nb, err := startBrowser(ctx, filepath.Join(tmp, "profile-"+strconv.Itoa(i)))
		if err != nil {
			return err
		}
		if b != nil {
			b.Close()
		}
		b = nb
		if err := b.Navigate(ctx, site+"/.verity/v1/session"); err != nil {
			b.Close()
			return err
		}
		st, err := browser.Eval[startTiming](ctx, b, "("+registerJS+")()")
		if err != nil {
			b.Close()
			return fmt.Errorf("worker start: %w", err)
		}
		active = append(active, st.ActiveMs)
		if st.ControlMs >= 0 {
			control = append(control, st.ControlMs)
		}
	}
	defer b.Close()
	res.add("worker_register_to_active", median(active), "ms", fmt.Sprintf("median of %d, fresh profiles", len(active)))
	if len(control) > 0 {
		res.add("worker_register_to_controlling", median(control), "ms", fmt.Sprintf("median of %d (clients.claim)", len(control)))
	}

	if err := b.Navigate(ctx, site+"/"); err != nil {
		return err
	}
	if err := b.WaitController(ctx); err != nil {
		return err
	}
	// The worker script answers from the network while the wasm boots
	// (slower under load): the fetches below are the Go worker's.
	if err := waitGoWorker(ctx, b); err != nil {
		return err
	}
	events, err := quietNetworkEvents(ctx, b)
	if err != nil {
		return err
	}
	mbps := func(ms float64) float64 { return float64(pageSize) / (ms / 1000) / 1e6 }
	acct := newCPUAccount(d) // nil unless VERITY_BENCH_CPU is set
	defer acct.report(os.Stderr, res)
	// fetchRuns fetches the asset cfg.Runs+1 times. The first run warms up
	// and checks the body: it reads it whole and hashes it (SHA-256) in the
	// page; the measured runs count its bytes through a reader, the page
	// work of the raw row.
	fetchRuns := func(what string, check func(browser.FetchResult) error) ([]float64, error) {
		var out []float64
		acct.row(what)
		defer acct.endRow()
		opts := &browser.FetchOptions{Cache: "no-store"}
		for i := 0; i <= cfg.Runs; i++ {
			if i == 0 {
				r, err := b.Fetch(ctx, "/"+pageFile, opts)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", what, err)
				}
				if r.Status != http.StatusOK || r.SHA256 != wantSHA || r.Error != "" {
					return nil, fmt.Errorf("%s: status %d, %d bytes, sha256 %s (want %s), error %q", what, r.Status, r.Size, r.SHA256, wantSHA, r.Error)
				}
				if err := check(r); err != nil {
					return nil, fmt.Errorf("%s: %w", what, err)
				}
				continue
			}
			acct.begin(ctx)
			r, err := browser.Call[browser.FetchResult](ctx, b, pageReadJS, "/"+pageFile, opts)
			if err == nil {
				acct.end(ctx, r.Millis)
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			if r.Status != http.StatusOK || r.Size != pageSize || r.Error != "" {
				return nil, fmt.Errorf("%s: status %d, %d bytes (want %d), error %q", what, r.Status, r.Size, pageSize, r.Error)
			}
			if err := check(r); err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			out = append(out, mbps(r.Millis))
		}
		return out, nil
	}

	// Through the worker over WebTransport, verified; with the worker's
	// thread sampled meanwhile when VERITY_BENCH_PROFILE is set.
	var stopProfile func() error
	if os.Getenv("VERITY_BENCH_PROFILE") != "" {
		fmt.Fprintf(os.Stderr, "profile of the worker's thread, %d fetches of %d bytes (and a warm-up):\n", cfg.Runs, pageSize)
		stop, err := workerProfile(ctx, b, os.Stderr)
		if err != nil {
			return err
		}
		stopProfile = stop
	}
	worker, err := fetchRuns("worker", func(r browser.FetchResult) error {
		if tr, _ := r.Timing("verity"); tr != "webtransport" {
			return fmt.Errorf("served by %q, not over WebTransport (Server-Timing %q)", tr, r.Headers["server-timing"])
		}
		return nil
	})
	if stopProfile != nil {
		if err2 := stopProfile(); err == nil {
			err = err2
		}
	}
	if err != nil {
		return err
	}
	res.add("page_worker_webtransport", median(worker), "MB/s", "32 MiB, worker verifies every block")

	// A raw WebTransport stream from the page, no worker, no verification.
	target := "/ipfs/" + sess.Root + "/" + pageFile + "?format=car&dag-scope=entity"
	var raw []float64
	acct.row("raw")
	for i := 0; i <= cfg.Runs; i++ {
		if i > 0 {
			acct.begin(ctx)
		}
		r, err := browser.Call[rawResult](ctx, b, rawWTJS, sess.Nodes[0].WebTransport, sess.Nodes[0].CertHashes[0], target)
		if err != nil {
			return fmt.Errorf("raw WebTransport: %w", err)
		}
		if i > 0 {
			acct.end(ctx, r.Ms)
		}
		if r.Bytes < pageSize {
			return fmt.Errorf("raw WebTransport: %d bytes, want the CAR of %d bytes", r.Bytes, pageSize)
		}
		if i > 0 {
			raw = append(raw, mbps(r.Ms))
		}
	}
	res.add("page_raw_webtransport", median(raw), "MB/s", "same CAR stream read in the page, unverified")
	if err := events.none("page worker and raw rows", 0); err != nil {
		return err
	}

	// Plain gateway HTTP, the worker bypassed: the bypass needs the
	// DevTools Network domain, so this row's fetches send their body
	// events to the bench (counted in its note).
	if err := b.BypassServiceWorker(ctx, true); err != nil {
		return err
	}
	gwEvents := events.count()
	gw, err := fetchRuns("gateway", func(r browser.FetchResult) error {
		if tr, ok := r.Timing("verity"); ok && tr != "first-visit" {
			return fmt.Errorf("the worker answered (Server-Timing %q) although bypassed", r.Headers["server-timing"])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := b.BypassServiceWorker(ctx, false); err != nil {
		return err
	}
	gwEvents = events.count() - gwEvents
	res.add("page_gateway_http", median(gw), "MB/s", fmt.Sprintf("plain HTTP from the gateway (verifies), worker bypassed (DevTools Network domain on: %d Network.dataReceived over its %d fetches)", gwEvents, cfg.Runs+1))

	// A fetch that wakes a stopped worker, next to a warm one. A stopped
	// worker answers at once: from its cache (default cache mode), or from
	// the network while the wasm boots (no-store skips the cache); the warm
	// fetch waits until the Go worker runs.
	var cold, coldCached, warm []float64
	for range cfg.Runs {
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		r, err := b.Fetch(ctx, "/style.css", nil)
		if err != nil || r.Status != http.StatusOK {
			return fmt.Errorf("cold cached fetch: status %d: %v", r.Status, err)
		}
		coldCached = append(coldCached, r.Millis)
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		r, err = b.Fetch(ctx, "/style.css", &browser.FetchOptions{Cache: "no-store"})
		if err != nil || r.Status != http.StatusOK {
			return fmt.Errorf("cold fetch: status %d: %v", r.Status, err)
		}
		cold = append(cold, r.Millis)
		if err := waitGoWorker(ctx, b); err != nil {
			return err
		}
		// The Go worker's first request loads its session and connects.
		if _, err := b.Fetch(ctx, "/style.css", &browser.FetchOptions{Cache: "no-store"}); err != nil {
			return err
		}
		r, err = b.Fetch(ctx, "/style.css", &browser.FetchOptions{Cache: "no-store"})
		if err != nil || r.Status != http.StatusOK {
			return fmt.Errorf("warm fetch: status %d: %v", r.Status, err)
		}
		warm = append(warm, r.Millis)
	}
	res.add("fetch_cold_worker", median(cold), "ms", "small file past the cache, worker stopped (the network answers while the wasm boots)")
	res.add("fetch_cold_worker_cached", median(coldCached), "ms", "small file in the worker's cache, worker stopped (no wasm needed)")
	res.add("fetch_warm_worker", median(warm), "ms", "small file, worker running")

	// Last, as it leaves the tab on an origin of its own: the service
	// worker's hop alone (floor.go).
	return floorRows(ctx, cfg, b, acct, sess.Nodes[0].WebTransport, sess.Nodes[0].CertHashes[0], target, pageSize, res)
}

// waitGoWorker waits until the worker's Go side runs (verity-cache says so).
func waitGoWorker(ctx context.Context, b *browser.Browser) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := b.Message(ctx, "verity-cache")
		if err == nil && strings.Contains(string(raw), `"running":true`) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the worker's Go side did not start: %s %v", raw, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startBrowser(ctx context.Context, dir string) (*browser.Browser, error) {
	return browser.Start(ctx, browser.Config{UserDataDir: dir, WaitTimeout: 30 * time.Second})
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := browser.NewHTTPClient(10 * time.Second).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
