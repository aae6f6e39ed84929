package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/web"
)

// The loopback addresses of the visit rows' forwarders: the gateway (the
// site's host name maps there), the nodes (the address they publish) and
// the plain file server.
const (
	visitGatewayHost = "127.0.0.6"
	visitNodeHost    = "127.0.0.7"
	visitPlainHost   = "127.0.0.8"
)

// tcpHides is what the TCP forwarders spare the rows that use them (the
// gateway and the plain server; the nodes' UDP forwarder delays every
// datagram, QUIC's handshake and congestion control included).
const tcpHides = "TCP ends at the forwarder: no handshake and no slow start over the delay"

// visitMinRuns is the least number of runs the visit rows take the median of.
const visitMinRuns = 5

// visitIdleFor is how long a visitor stays on the page before opening the
// next one in the idle row: longer than the browser leaves a service
// worker without an event before it stops it (30 s, checked every few
// seconds).
const visitIdleFor = 45 * time.Second

// visitReadFor is how long the returned row's visitor reads a page before
// the worker stops.
const visitReadFor = 1500 * time.Millisecond

// visitJS reads the load-event time of the page (navigation start →
// loadEventStart, in the page's clock) and how each subresource was
// served: the Server-Timing "verity" entry ("webtransport", "cache", ...;
// "" when the worker did not answer) counted by value, the bytes that
// came over the network for the page (transferSize), and the resources
// answered with an error status.
const visitJS = `() => {
	const nav = performance.getEntriesByType('navigation')[0];
	const res = performance.getEntriesByType('resource');
	const routes = {};
	let transfer = 0;
	for (const e of res) {
		const st = (e.serverTiming || []).find(s => s.name === 'verity');
		const k = st ? st.description : '';
		routes[k] = (routes[k] || 0) + 1;
		transfer += e.transferSize || 0;
	}
	const st = (nav.serverTiming || []).find(s => s.name === 'verity');
	const failed = res.filter(e => e.responseStatus >= 400).map(e => e.name + ' (' + e.responseStatus + ')');
	const detail = res.map(e => [e.name.replace(/.*\//, ''), Math.round(e.startTime), Math.round(e.responseStart), Math.round(e.responseEnd),
		(e.serverTiming || []).map(s => s.name + '=' + (s.description || s.duration)).join(' ')].join(' '));
	const c = navigator.serviceWorker && navigator.serviceWorker.controller;
	const worker = res.filter(e => e.workerStart > 0).length;
	return {load: nav.loadEventStart, resources: res.length, routes, doc: st ? st.description : '', transfer, detail, failed,
		controller: c ? new URL(c.scriptURL).pathname : '', worker};
}`

// visitFloorWorker is the path of the floor's service worker, and
// visitFloorWorkerJS its script: every request answered with the
// network's answer, as fetch gives it.
const (
	visitFloorWorker   = "/visit-floor-sw.js"
	visitFloorWorkerJS = `self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => e.respondWith(fetch(e.request)));
`
)

// visitFloorRegisterJS registers the floor's worker on the page's origin
// and waits until it controls the page.
const visitFloorRegisterJS = `async (script) => {
	if (navigator.serviceWorker.controller) return true;
	const claimed = new Promise(r => navigator.serviceWorker.addEventListener('controllerchange', () => r(true), {once: true}));
	await navigator.serviceWorker.register(script, {scope: '/'});
	return Promise.race([claimed, new Promise(r => setTimeout(() => r(false), 10000))]);
}`

type visitResult struct {
	Load      float64        `json:"load"`
	Resources int            `json:"resources"`
	Routes    map[string]int `json:"routes"`
	Doc       string         `json:"doc"`
	Transfer  int64          `json:"transfer"`
	Detail    []string       `json:"detail"` // per resource: name, start, response start and end (ms), Server-Timing
	Failed    []string       `json:"failed"` // resources answered with a status of 400 or more
	// Controller is the path of the script of the page's service worker;
	// Worker counts the resources a service worker answered.
	Controller string `json:"controller"`
	Worker     int    `json:"worker"`
}

// smallJS fetches path n+1 times with cache 'no-store' (a new query each
// time) and returns the milliseconds of the last n, fetch() → body read,
// timed in the page, and the Server-Timing "verity" entry of the last.
const smallJS = `async (path, n) => {
	const ms = [], timings = [];
	let route = '';
	for (let i = 0; i <= n; i++) {
		const t0 = performance.now();
		const r = await fetch(path + '?r=' + i + '-' + Math.random(), {cache: 'no-store'});
		const b = await r.arrayBuffer();
		const t = performance.now() - t0;
		if (r.status !== 200 || b.byteLength === 0) throw new Error(path + ': status ' + r.status + ', ' + b.byteLength + ' bytes');
		const h = r.headers.get('server-timing') || '';
		const m = /verity;desc="([^"]*)"/.exec(h);
		route = m ? m[1] : '';
		if (i > 0) { ms.push(t); timings.push(h); }
	}
	return {ms, route, timings};
}`

// expireSessionJS moves the session in the worker's cache index ten
// minutes past its ttl; it returns whether there was one.
const expireSessionJS = `async () => {
	const c = await caches.open('verity-blocks-v1');
	const r = await c.match('/.verity/cache/index');
	if (!r) return false;
	const idx = await r.json();
	if (!idx.session) return false;
	idx.session.expires = Date.now() - 10 * 60 * 1000;
	await c.put('/.verity/cache/index', new Response(JSON.stringify(idx), {headers: {'Content-Type': 'application/json'}}));
	return true;
}`

type smallResult struct {
	Ms      []float64 `json:"ms"`
	Route   string    `json:"route"`
	Timings []string  `json:"timings"` // the Server-Timing headers
}

// visitSpeed measures in Chromium the load-event time of a generated
// multi-asset page (makeVisitSite) under the emulated topology (gateway
// gatewayRTT away, nodes nodeRTT away, netem forwarders): through the
// warm worker, with the worker stopped first, with the worker bypassed
// (gateway only), from a plain HTTP file server of the same files at the
// nodes' distance (the ideal), and on a natural repeat visit with every
// cache on (with the bytes the nodes sent meanwhile). Then the per-request
// overhead: a 2 KiB asset fetched from the page through the warm worker,
// from the plain server and from the gateway.
func visitSpeed(ctx context.Context, cfg Config, tmp string, res *Results) error {
	siteDir := filepath.Join(tmp, "visit-site")
	// The page: generated under visitDir of the demo site, or the site of
	// -visit-site deployed as it is (its own paths at the root).
	var site visitSite
	pageDir, small := visitDir, visitSmall
	if cfg.VisitSite != "" {
		var err error
		if site, err = copyVisitSite(cfg.VisitSite, siteDir); err != nil {
			return fmt.Errorf("the site of -visit-site: %w", err)
		}
		pageDir, small = "", visitOwnSmall
	} else {
		if err := os.CopyFS(siteDir, web.Demo); err != nil {
			return fmt.Errorf("copy demo site: %w", err)
		}
		var err error
		if site, err = makeVisitSite(siteDir); err != nil {
			return fmt.Errorf("generate the visit site: %w", err)
		}
	}
	pagePath := "/" // the page's path on the site
	if pageDir != "" {
		pagePath = "/" + pageDir + "/"
	}
	d, err := devnet.New(ctx, devnet.Config{
		DataDir:  filepath.Join(tmp, "visit-devnet"),
		Listen:   "127.0.0.1:0",
		Nodes:    2,
		DemoDir:  siteDir,
		NodeHost: visitNodeHost,
		Logger:   cfg.Logger,
	})
	if err != nil {
		return fmt.Errorf("visit devnet: %w", err)
	}
	defer d.Close()
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	forward := func(udp bool, listen, target string, rtt time.Duration) (string, error) {
		nc := netem.Config{Listen: listen, Target: target, Up: netem.Link{Delay: rtt / 2}, Down: netem.Link{Delay: rtt / 2}}
		if udp {
			p, err := netem.NewUDP(nc)
			if err != nil {
				return "", err
			}
			closers = append(closers, p)
			return p.Addr(), nil
		}
		p, err := netem.NewTCP(nc)
		if err != nil {
			return "", err
		}
		closers = append(closers, p)
		return p.Addr(), nil
	}
	samePort := func(udp bool, host, rawURL string, rtt time.Duration) error {
		u, err := url.Parse(rawURL)
		if err != nil || u.Port() == "" {
			return fmt.Errorf("URL %q has no port", rawURL)
		}
		_, err = forward(udp, net.JoinHostPort(host, u.Port()), net.JoinHostPort("127.0.0.1", u.Port()), rtt)
		return err
	}
	for _, n := range d.Nodes() {
		if err := samePort(true, visitNodeHost, n.WebTransportURL(), nodeRTT); err != nil {
			return fmt.Errorf("node forwarder: %w", err)
		}
		if err := samePort(false, visitNodeHost, n.HTTPURL(), 0); err != nil { // the gateway's way to the node
			return fmt.Errorf("node forwarder: %w", err)
		}
	}
	if err := samePort(false, visitGatewayHost, d.Gateway().URL(), gatewayRTT); err != nil {
		return fmt.Errorf("gateway forwarder: %w", err)
	}

	// The plain server: the same files, net/http's FileServer, an empty
	// loader so the page makes the same requests.
	visitFiles := http.FileServer(http.Dir(filepath.Join(siteDir, pageDir)))
	plainLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	plainSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/verity.js" {
			w.Header().Set("Content-Type", "text/javascript")
			return
		}
		visitFiles.ServeHTTP(w, r)
	})}
	go plainSrv.Serve(plainLn)
	defer plainSrv.Close()
	plainAddr, err := forward(false, net.JoinHostPort(visitPlainHost, "0"), plainLn.Addr().String(), nodeRTT)
	if err != nil {
		return fmt.Errorf("plain forwarder: %w", err)
	}
	plain := "http://" + plainAddr
	// The floor: the plain server's files on an origin of their own (its
	// forwarder's port), where a service worker of three lines answers
	// every request with the network's answer.
	floorLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	floorSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == visitFloorWorker {
			w.Header().Set("Content-Type", "text/javascript")
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprint(w, visitFloorWorkerJS)
			return
		}
		plainSrv.Handler.ServeHTTP(w, r)
	})}
	go floorSrv.Serve(floorLn)
	defer floorSrv.Close()
	floorAddr, err := forward(false, net.JoinHostPort(visitPlainHost, "0"), floorLn.Addr().String(), nodeRTT)
	if err != nil {
		return fmt.Errorf("floor forwarder: %w", err)
	}
	floor := "http://" + floorAddr

	stop, err := runDevnet(ctx, d, 30*time.Second)
	if err != nil {
		return err
	}
	defer stop()
	siteURL := strings.TrimRight(d.SiteURL(devnet.SiteName), "/")
	su, err := url.Parse(siteURL)
	if err != nil {
		return err
	}
	b, err := browser.Start(ctx, browser.Config{
		UserDataDir: filepath.Join(tmp, "profile-visit"),
		WaitTimeout: 30 * time.Second,
		Flags:       []string{"host-resolver-rules=MAP " + su.Hostname() + " " + visitGatewayHost},
	})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Navigate(ctx, siteURL+"/"); err != nil {
		return err
	}
	if err := b.WaitController(ctx); err != nil {
		return err
	}
	// As a visitor's browser: no DevTools event per chunk of a body, but
	// for the gateway rows, whose bypass needs the Network domain.
	events, err := quietNetworkEvents(ctx, b)
	if err != nil {
		return err
	}
	quietFrom, gwEvents := events.count(), int64(0)
	page := siteURL + pagePath

	// The floor's worker, registered once; then a controlled page of the
	// site again, for the clears.
	if err := b.Navigate(ctx, floor+"/"); err != nil {
		return err
	}
	if ok, err := browser.Call[bool](ctx, b, visitFloorRegisterJS, visitFloorWorker); err != nil || !ok {
		return fmt.Errorf("floor: register its worker: %v %w", ok, err)
	}
	if err := b.Navigate(ctx, siteURL+"/"); err != nil {
		return err
	}
	clearHTTPCache := func() error {
		_, err := chromedp.Call(b.Context(), network.ClearBrowserCache, cdp.Empty{})
		return err
	}
	clearAll := func() error {
		if _, err := b.Message(ctx, "verity-cache-clear"); err != nil {
			return err
		}
		return clearHTTPCache()
	}
	// The CPU account (VERITY_BENCH_CPU) of the measured rows, each
	// visit from its navigation to its load event.
	acct := newVisitCPUAccount(d)
	defer acct.report(os.Stderr, res)
	accounted := map[string]string{"worker warm": "warm", "worker warm, again": "warm_again", "worker warm, cache kept": "warm_cached",
		"worker stopped, cache kept": "stopped_cached", "worker stopped, cache kept, session expired": "stopped_expired",
		"worker stopped": "stopped", "gateway": "gateway", "plain": "plain", "floor": "floor", "repeat": "repeat"}
	checked := func(r visitResult, what string) (visitResult, error) {
		if os.Getenv("VERITY_BENCH_TIMINGS") != "" {
			fmt.Fprintf(os.Stderr, "%s: load %.0f ms\n\t%s\n", what, r.Load, strings.Join(r.Detail, "\n\t"))
		}
		if r.Resources < site.Resources {
			return r, fmt.Errorf("%s: the page loaded %d resources, want %d", what, r.Resources, site.Resources)
		}
		if len(r.Failed) > 0 {
			return r, fmt.Errorf("%s: resources that did not load: %s", what, strings.Join(r.Failed, ", "))
		}
		return r, nil
	}
	visit := func(u, what string) (visitResult, error) {
		if err := b.Navigate(ctx, "about:blank"); err != nil {
			return visitResult{}, err
		}
		key := accounted[what]
		if key != "" {
			acct.row(key)
			acct.begin(ctx)
		}
		err := b.Navigate(ctx, u)
		if key != "" {
			acct.end(ctx, 0)
		}
		if err != nil {
			return visitResult{}, fmt.Errorf("%s: %w", what, err)
		}
		r, err := browser.Call[visitResult](ctx, b, visitJS)
		if err != nil {
			return r, fmt.Errorf("%s: %w", what, err)
		}
		return checked(r, what)
	}
	if site.Resources == 0 {
		// A site of -visit-site: what its page loads, from the plain
		// server, which serves its files as they are.
		r, err := visit(plain+"/", "plain, counting the page's resources")
		if err != nil {
			return err
		}
		site.Resources, site.Bytes = r.Resources, r.Transfer
		if err := b.Navigate(ctx, siteURL+"/"); err != nil { // a controlled page for the clears
			return err
		}
	}

	// profiled is visit, with the worker's thread sampled meanwhile when
	// VERITY_BENCH_PROFILE is set and on is true.
	profiled := func(on bool, u, what string) (visitResult, error) {
		if !on || os.Getenv("VERITY_BENCH_PROFILE") == "" {
			return visit(u, what)
		}
		fmt.Fprintf(os.Stderr, "profile of the worker's thread, %s:\n", what)
		stop, err := workerProfile(ctx, b, os.Stderr)
		if err != nil {
			return visitResult{}, err
		}
		r, err := visit(u, what)
		if err2 := stop(); err == nil {
			err = err2
		}
		return r, err
	}

	// traced is run, with the whole browser traced meanwhile when
	// VERITY_BENCH_TRACE names a directory and on is true: the trace goes
	// to name.json there, its summary to stderr (browserTrace).
	traced := func(on bool, name string, run func() (visitResult, error)) (visitResult, error) {
		dir := os.Getenv("VERITY_BENCH_TRACE")
		if !on || dir == "" {
			return run()
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return visitResult{}, err
		}
		fmt.Fprintf(os.Stderr, "trace of the visit %s:\n", name)
		stop, err := browserTrace(ctx, b, filepath.Join(dir, name+".json"), os.Stderr)
		if err != nil {
			return visitResult{}, err
		}
		r, err := run()
		if err2 := stop(); err == nil {
			err = err2
		}
		return r, err
	}

	type row struct {
		load   []float64
		routes map[string]int // summed over the measured runs
		doc    map[string]int
		nodeB  []float64
	}
	rows := map[string]*row{}
	add := func(name string, r visitResult, nb float64) {
		w := rows[name]
		if w == nil {
			w = &row{routes: map[string]int{}, doc: map[string]int{}}
			rows[name] = w
		}
		w.load = append(w.load, r.Load)
		for k, v := range r.Routes {
			w.routes[k] += v
		}
		w.doc[r.Doc]++
		w.nodeB = append(w.nodeB, nb)
	}
	runs := max(cfg.Runs, visitMinRuns)
	var returnBoot []float64     // the returned row's boots, ms
	for i := 0; i <= runs; i++ { // round 0 warms up
		// Worker warm, every cache empty: every asset from the nodes.
		if err := clearAll(); err != nil {
			return err
		}
		r, err := traced(i == 1, "warm", func() (visitResult, error) { return profiled(i > 0, page, "worker warm") })
		if err != nil {
			return err
		}
		if i > 0 {
			add("warm", r, 0)
		}
		// The same again in the same worker's life: the worker that came
		// back for the visit above (it was stopped in the last round) has
		// compiled its code for it meanwhile.
		if _, err := b.Message(ctx, "verity-cache"); err != nil {
			return err
		}
		if err := clearAll(); err != nil {
			return err
		}
		if r, err = traced(i == 1, "warm-again", func() (visitResult, error) { return visit(page, "worker warm, again") }); err != nil {
			return err
		}
		if i > 0 {
			add("warm_again", r, 0)
		}
		// A repeat visit as a visitor makes it: the worker's cache kept
		// (written now: verity-cache writes the pending files first), the
		// HTTP cache emptied; the worker warm, then stopped first.
		if _, err := b.Message(ctx, "verity-cache"); err != nil {
			return err
		}
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if r, err = profiled(i > 0, page, "worker warm, cache kept"); err != nil {
			return err
		}
		if i > 0 {
			add("warm_cached", r, 0)
		}
		// A visitor coming back to the site's tab. The visitor came with
		// the worker stopped (its navigation starts the worker, in the
		// page's renderer process), followed a link to a page the worker
		// served from the nodes, and read it for visitReadFor; the browser
		// then stopped the worker (as it does 30 s after the tab was hidden
		// or left alone), and the visitor came back (the page's keepalive
		// starts the worker, which boots its Go side) and followed a link
		// again: that visit is measured, every cache emptied. The page
		// holds the worker's compiled wasm once it has loaded (verity.js),
		// and the worker, started again in the page's process, finds it.
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		if err := b.Navigate(ctx, page+"?enter"); err != nil {
			return err
		}
		if _, err := keepaliveBoot(ctx, b); err != nil {
			return err
		}
		if err := clearAll(); err != nil {
			return err
		}
		if _, err := linkVisit(ctx, b, page+"?read"); err != nil {
			return err
		}
		select {
		case <-time.After(visitReadFor):
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := b.WaitFor(ctx, "the page holding the worker's compiled wasm", heldWasmJS); err != nil {
			return err
		}
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		boot, err := keepaliveBoot(ctx, b)
		if err != nil {
			return err
		}
		if err := clearAll(); err != nil {
			return err
		}
		acct.row("returned")
		acct.begin(ctx)
		r, err = traced(i == 1, "returned", func() (visitResult, error) { return linkVisit(ctx, b, page+"?back") })
		acct.end(ctx, 0)
		if err != nil {
			return fmt.Errorf("worker returned: %w", err)
		}
		if r, err = checked(r, "worker returned"); err != nil {
			return err
		}
		if i > 0 {
			add("returned", r, 0)
			returnBoot = append(returnBoot, boot)
		}
		// The worker's cache writes of the visit done (verity-cache), as
		// a browser lets a worker finish them before it stops it.
		if _, err := b.Message(ctx, "verity-cache"); err != nil {
			return err
		}
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		if r, err = visit(page, "worker stopped, cache kept"); err != nil {
			return err
		}
		if i > 0 {
			add("stopped_cached", r, 0)
		}
		// The same after a pause: the session the worker kept is ten
		// minutes past its ttl (rewritten in the worker's index, which
		// the stopped worker reads when it starts).
		if _, err := b.Message(ctx, "verity-cache"); err != nil {
			return err
		}
		if ok, err := browser.Call[bool](ctx, b, expireSessionJS); err != nil || !ok {
			return fmt.Errorf("expire the worker's session: %v %w", ok, err)
		}
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		if r, err = visit(page, "worker stopped, cache kept, session expired"); err != nil {
			return err
		}
		if i > 0 {
			add("stopped_expired", r, 0)
		}
		// Worker stopped first, every cache empty.
		if err := clearAll(); err != nil {
			return err
		}
		if err := b.StopAllWorkers(ctx); err != nil {
			return err
		}
		if r, err = visit(page, "worker stopped"); err != nil {
			return err
		}
		if i > 0 {
			add("stopped", r, 0)
		}
		// Worker bypassed: the gateway only.
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if err := events.none("visit", quietFrom); err != nil {
			return err
		}
		if err := b.BypassServiceWorker(ctx, true); err != nil {
			return err
		}
		from := events.count()
		r, err = visit(page, "gateway")
		if err2 := b.BypassServiceWorker(ctx, false); err == nil {
			err = err2
		}
		if err != nil {
			return err
		}
		if i > 0 {
			gwEvents += events.count() - from
		}
		quietFrom = events.count()
		if i > 0 {
			add("gateway", r, 0)
		}
		// The plain file server at the nodes' distance.
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if r, err = visit(plain+"/", "plain"); err != nil {
			return err
		}
		if i > 0 {
			add("plain", r, 0)
		}
		// The same files through the floor's service worker.
		if err := clearHTTPCache(); err != nil {
			return err
		}
		if r, err = visit(floor+"/", "floor"); err != nil {
			return err
		}
		if r.Controller != visitFloorWorker || r.Worker < r.Resources {
			return fmt.Errorf("floor: the page's controller is %q, which answered %d of its %d resources: want %s answering every one", r.Controller, r.Worker, r.Resources, visitFloorWorker)
		}
		if i > 0 {
			add("floor", r, 0)
		}
		if err := b.Navigate(ctx, siteURL+"/"); err != nil { // a controlled page for the next clear
			return err
		}
	}
	// A natural repeat visit: every cache on, the worker running; the first
	// visit fills the caches.
	if _, err := visit(page, "first visit"); err != nil {
		return err
	}
	var repeatHTTP []float64
	for range runs {
		before, beforeHTTP, err := nodeBytes(ctx, d)
		if err != nil {
			return err
		}
		r, err := visit(page, "repeat")
		if err != nil {
			return err
		}
		after, afterHTTP, err := nodeBytes(ctx, d)
		if err != nil {
			return err
		}
		add("repeat", r, after-before)
		repeatHTTP = append(repeatHTTP, afterHTTP-beforeHTTP)
	}

	// A page left open: the visitor stays on the site's page for
	// visitIdleFor, then opens the next one. DevTools is detached from the
	// worker meanwhile, as in a visitor's browser (browser.DetachWorkers),
	// so the browser stops the worker after 30 s without an event unless
	// the page keeps it running (verity.js). Then, as in the cached rows
	// above, the worker's cache kept and the HTTP cache emptied.
	idleRunning := 0
	for range cfg.VisitIdle {
		if err := b.Navigate(ctx, page); err != nil {
			return err
		}
		if _, err := b.Message(ctx, "verity-cache"); err != nil {
			return err
		}
		if err := b.DetachWorkers(ctx); err != nil {
			return err
		}
		select {
		case <-time.After(visitIdleFor):
		case <-ctx.Done():
			return ctx.Err()
		}
		running, err := b.RunningWorkers(ctx)
		if err != nil {
			return err
		}
		if running > 0 {
			idleRunning++
		}
		if err := b.AttachWorkers(ctx); err != nil {
			return err
		}
		if err := clearHTTPCache(); err != nil {
			return err
		}
		r, err := visit(page, "worker idle, cache kept")
		if err != nil {
			return err
		}
		add("idle_cached", r, 0)
	}
	if cfg.VisitIdle > 0 {
		// A worker the browser stopped boots its Go side once the visit
		// left it idle: the rows after need it running.
		if _, err := b.Message(ctx, "verity-stats"); err != nil {
			return err
		}
	}

	if err := events.none("visit", quietFrom); err != nil {
		return err
	}
	if os.Getenv("VERITY_BENCH_TIMINGS") != "" {
		raw, err := b.Message(ctx, "verity-cache")
		fmt.Fprintf(os.Stderr, "worker cache after the repeat visits: %s %v\n", raw, err)
	}
	for _, k := range []string{"warm", "warm_again", "warm_cached", "returned", "stopped", "stopped_cached", "stopped_expired", "idle_cached", "gateway", "plain", "floor", "repeat"} {
		if rows[k] == nil {
			continue
		}
		fmt.Fprintf(os.Stderr, "visit %s: load %v ms; routes %s\n", k, rows[k].load, routeSummary(rows[k].routes))
	}
	desc := fmt.Sprintf("%d resources + HTML, %.2f MB", site.Resources, float64(site.Bytes)/1e6)
	if cfg.VisitSite != "" {
		desc = fmt.Sprintf("the site of -visit-site %s: %d resources + HTML, the resources %.2f MB from the plain server", filepath.Base(cfg.VisitSite), site.Resources, float64(site.Bytes)/1e6)
	}
	note := func(name, what string) string {
		w := rows[name]
		return fmt.Sprintf("%s: %s; load event, median of %d; served by %s (document: %s)", desc, what, len(w.load), routeSummary(w.routes), routeSummary(w.doc))
	}
	res.add("visit_worker_warm", median(rows["warm"].load), "ms", note("warm", fmt.Sprintf("worker running, session open, nodes %v RTT, caches emptied", nodeRTT)))
	res.add("visit_worker_warm_again", median(rows["warm_again"].load), "ms", note("warm_again", "as visit_worker_warm, again right after it in the same worker's life, caches emptied again"))
	res.add("visit_worker_warm_cached", median(rows["warm_cached"].load), "ms", note("warm_cached", "worker running, its cache kept from the warm visit, HTTP cache emptied"))
	res.add("visit_worker_returned", median(rows["returned"].load), "ms", note("returned", fmt.Sprintf("a visitor back in the tab: a page served from the nodes read %v (until it held the worker's compiled wasm), the worker stopped, started again by the page's keepalive and its Go side booted (in %.1f ms, median: the boot's start to ready), then caches emptied and a link followed", visitReadFor, median(returnBoot))))
	res.add("visit_worker_returned_boot", median(returnBoot), "ms", fmt.Sprintf("the Go worker's boot in the row visit_worker_returned, from its start to ready (session and first node included), median of %d", len(returnBoot)))
	res.add("visit_worker_stopped_cached", median(rows["stopped_cached"].load), "ms", note("stopped_cached", "worker stopped first, its cache kept, HTTP cache emptied"))
	res.add("visit_worker_stopped_expired", median(rows["stopped_expired"].load), "ms", note("stopped_expired", "worker stopped first, its cache kept, its session 10 min past its ttl, HTTP cache emptied"))
	if w := rows["idle_cached"]; w != nil {
		res.add("visit_worker_idle_cached", median(w.load), "ms", note("idle_cached", fmt.Sprintf("the page left open %v first (DevTools detached from the worker, as in a visitor's browser; the worker still running after it in %d of %d), its cache kept, HTTP cache emptied", visitIdleFor, idleRunning, len(w.load))))
		res.ratio("ratio_visit_idle_cached_vs_warm_cached", "visit_worker_idle_cached", "visit_worker_warm_cached", "load event, the page left open first vs worker warm, both with the worker's cache kept")
		res.ratio("ratio_visit_idle_cached_vs_gateway", "visit_worker_idle_cached", "visit_gateway", "load event, the page left open first, the worker's cache kept, vs gateway only")
	}
	res.add("visit_worker_stopped", median(rows["stopped"].load), "ms", note("stopped", "worker stopped first (ServiceWorker.stopAllWorkers), caches emptied"))
	res.add("visit_gateway", median(rows["gateway"].load), "ms", note("gateway", fmt.Sprintf("worker bypassed, gateway %v RTT, HTTP cache emptied; %s; DevTools Network domain on for the bypass: %.0f Network.dataReceived per visit", gatewayRTT, tcpHides, float64(gwEvents)/float64(len(rows["gateway"].load)))))
	res.add("visit_plain", median(rows["plain"].load), "ms", fmt.Sprintf("%s: net/http FileServer of the same files %v RTT away (the ideal), HTTP cache emptied; %s; load event, median of %d", desc, nodeRTT, tcpHides, len(rows["plain"].load)))
	res.add("visit_floor_worker", median(rows["floor"].load), "ms", fmt.Sprintf("%s: the plain server's files on an origin whose service worker answers each request with fetch(request) (no Go, no verification: what any service worker adds), HTTP cache emptied; load event, median of %d", desc, len(rows["floor"].load)))
	res.add("visit_repeat", median(rows["repeat"].load), "ms", note("repeat", "repeat visit, every cache on, worker running"))
	res.add("visit_repeat_node_bytes", median(rows["repeat"].nodeB), "B", fmt.Sprintf("bytes the nodes sent to the browser during a repeat visit (verity_node_bytes_sent_total, transports but http), median of %d; over HTTP meanwhile (the gateway, audits): %.0f", len(rows["repeat"].nodeB), median(repeatHTTP)))
	res.ratio("ratio_visit_warm_vs_gateway", "visit_worker_warm", "visit_gateway", "load event, warm worker vs gateway only")
	res.ratio("ratio_visit_warm_vs_plain", "visit_worker_warm", "visit_plain", "load event, warm worker vs plain server at the nodes' distance")
	res.ratio("ratio_visit_warm_cached_vs_gateway", "visit_worker_warm_cached", "visit_gateway", "load event, warm worker with its cache vs gateway only")
	res.ratio("ratio_visit_warm_cached_vs_plain", "visit_worker_warm_cached", "visit_plain", "load event, warm worker with its cache vs plain server at the nodes' distance")
	res.ratio("ratio_visit_stopped_cached_vs_gateway", "visit_worker_stopped_cached", "visit_gateway", "load event, worker stopped first, its cache kept, vs gateway only")
	res.ratio("ratio_visit_stopped_expired_vs_gateway", "visit_worker_stopped_expired", "visit_gateway", "load event, worker stopped first, its cache kept, its session expired, vs gateway only")
	res.ratio("ratio_visit_stopped_vs_gateway", "visit_worker_stopped", "visit_gateway", "load event, worker stopped first vs gateway only")
	res.ratio("ratio_visit_repeat_vs_gateway", "visit_repeat", "visit_gateway", "load event, repeat visit vs gateway only")
	res.ratio("ratio_visit_repeat_vs_plain", "visit_repeat", "visit_plain", "load event, repeat visit vs plain server")
	res.ratio("ratio_visit_floor_vs_plain", "visit_floor_worker", "visit_plain", "load event, the plain server's files through a service worker that only fetches them vs without it")
	res.ratio("ratio_visit_warm_vs_floor", "visit_worker_warm", "visit_floor_worker", "load event, warm worker (every cache emptied) vs the floor's service worker")
	res.ratio("ratio_visit_returned_vs_warm", "visit_worker_returned", "visit_worker_warm", "load event, a worker started again while its page was open vs the warm worker's first visit in its life, both with every cache emptied")
	res.ratio("ratio_visit_returned_vs_plain", "visit_worker_returned", "visit_plain", "load event, a worker started again while its page was open (every cache emptied) vs plain server at the nodes' distance")
	res.ratio("ratio_visit_warm_again_vs_plain", "visit_worker_warm_again", "visit_plain", "load event, warm worker's second visit in its life (every cache emptied) vs plain server at the nodes' distance")
	res.ratio("ratio_visit_warm_again_vs_floor", "visit_worker_warm_again", "visit_floor_worker", "load event, warm worker's second visit in its life vs the floor's service worker")

	return requestOverhead(ctx, b, events, siteURL+pagePath, plain+"/", small, res)
}

// requestOverhead times a 2 KiB asset fetched from the page with cache
// 'no-store': through the warm worker (which then skips its own cache and
// fetches from a node), from the plain server at the nodes' distance and
// from the gateway with the worker bypassed.
func requestOverhead(ctx context.Context, b *browser.Browser, events *netEvents, page, plainPage, small string, res *Results) error {
	const n = 20
	quietFrom := events.count()
	measure := func(pageURL, path string, want ...string) ([]float64, error) {
		if err := b.Navigate(ctx, pageURL); err != nil {
			return nil, err
		}
		r, err := browser.Call[smallResult](ctx, b, smallJS, path, n)
		if err != nil {
			return nil, fmt.Errorf("2 KiB fetches from %s: %w", pageURL, err)
		}
		if !slices.Contains(want, r.Route) {
			return nil, fmt.Errorf("2 KiB fetches from %s: served by %q, want %q", pageURL, r.Route, want)
		}
		if os.Getenv("VERITY_BENCH_TIMINGS") != "" {
			for i, h := range r.Timings {
				fmt.Fprintf(os.Stderr, "%s %.1f ms %s\n", pageURL, r.Ms[i], h)
			}
		}
		return r.Ms, nil
	}
	worker, err := measure(page, small, "webtransport")
	if err != nil {
		return err
	}
	plainMs, err := measure(plainPage, small, "")
	if err != nil {
		return err
	}
	if err := events.none("2 KiB fetches", quietFrom); err != nil {
		return err
	}
	if err := b.BypassServiceWorker(ctx, true); err != nil {
		return err
	}
	gw, err := measure(page, small, "", "first-visit")
	if err2 := b.BypassServiceWorker(ctx, false); err == nil {
		err = err2
	}
	if err != nil {
		return err
	}
	res.add("request_2k_worker", median(worker), "ms", fmt.Sprintf("2 KiB, fetch(no-store) from the page through the warm worker, node %v RTT; median of %d", nodeRTT, len(worker)))
	res.add("request_2k_plain", median(plainMs), "ms", fmt.Sprintf("the same from the plain file server %v RTT away; median of %d", nodeRTT, len(plainMs)))
	res.add("request_2k_gateway", median(gw), "ms", fmt.Sprintf("the same from the gateway %v RTT away, worker bypassed; median of %d", gatewayRTT, len(gw)))
	if w, p := median(worker), median(plainMs); w > 0 && p > 0 {
		res.add("request_2k_worker_overhead", w-p, "ms", "per-request overhead of the worker: worker minus plain server")
	}
	return nil
}

// routeSummary prints counts by route, "" as "network".
func routeSummary(m map[string]int) string {
	var parts []string
	for k, v := range m {
		if k == "" {
			k = "network"
		}
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// heldWasmJS is true once the page holds the worker's compiled wasm
// (verity.js, holdWasm), and at once with a loader that does not.
const heldWasmJS = `!window.verity || !window.verity.heldWasm || window.verity.heldWasm() !== ''`

// linkVisit follows a link from the page to u, as a visitor's click does
// (the page's own navigation, which stays in its renderer process, where a
// navigation of DevTools from about:blank may take a new one), and reads
// the visit once its load event has ended.
func linkVisit(ctx context.Context, b *browser.Browser, u string) (visitResult, error) {
	if _, err := browser.Call[bool](ctx, b, `(u) => { location.href = u; return true; }`, u); err != nil {
		return visitResult{}, fmt.Errorf("follow a link to %s: %w", u, err)
	}
	loaded := fmt.Sprintf(`location.href === %q && performance.getEntriesByType('navigation')[0].loadEventEnd > 0`, u)
	deadline := time.Now().Add(30 * time.Second)
	for {
		// The old page answers until the new one commits, and no page
		// answers meanwhile.
		ok, err := browser.Eval[bool](ctx, b, loaded)
		if err == nil && ok {
			break
		}
		if time.Now().After(deadline) {
			at, _ := browser.Eval[string](ctx, b, `location.href + ' (' + document.readyState + ')'`)
			return visitResult{}, fmt.Errorf("the link to %s did not load within 30 s: the tab is at %s; last check: %v", u, at, err)
		}
		select {
		case <-time.After(25 * time.Millisecond):
		case <-ctx.Done():
			return visitResult{}, ctx.Err()
		}
	}
	return browser.Call[visitResult](ctx, b, visitJS)
}

// keepaliveBoot sends the page's keepalive to its stopped worker, as a
// page coming back into view does, which starts it and boots its Go side,
// and waits for the Go worker; it returns the boot's start to ready, ms.
func keepaliveBoot(ctx context.Context, b *browser.Browser) (float64, error) {
	if err := b.Keepalive(ctx); err != nil {
		return 0, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := b.Message(ctx, "verity-cache")
		if err != nil {
			return 0, err
		}
		var st struct {
			Running bool               `json:"running"`
			Boot    map[string]float64 `json:"boot"`
		}
		if err := json.Unmarshal(raw, &st); err != nil {
			return 0, fmt.Errorf("verity-cache: %w", err)
		}
		if st.Running {
			return st.Boot["ready"] - st.Boot["start"], nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("the Go worker did not boot within 20 s of the keepalive: %s", raw)
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
