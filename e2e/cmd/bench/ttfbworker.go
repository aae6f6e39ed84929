package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/web"
)

// ttfbWorkerHost is the loopback address the forwarders in front of the
// ttfb-worker rows' nodes listen on (the address those nodes publish).
const ttfbWorkerHost = "127.0.0.5"

// ttfbWorkerGatewayHost is where the forwarders in front of the
// ttfb-worker rows' gateways listen (80 ms RTT): the browser resolves the
// site's name to it, so the page, its session and the bypassed fetches
// of the gateway row all cross the gateway's distance.
const ttfbWorkerGatewayHost = "127.0.0.7"

// ttfbWorkerJS fetches path in the page through the worker and times, in
// the page's clock, the response head, the first body chunk (the first
// verified bytes the worker released) and the whole body.
const ttfbWorkerJS = `async (path) => {
	const t0 = performance.now();
	const r = await fetch(path, {cache: 'no-store'});
	const head = performance.now() - t0;
	const rd = r.body.getReader();
	let first = -1, bytes = 0, chunks = 0;
	for (;;) {
		const {value, done} = await rd.read();
		if (done) break;
		if (first < 0 && value.byteLength > 0) first = performance.now() - t0;
		bytes += value.byteLength;
		chunks++;
	}
	return {status: r.status, head, first, total: performance.now() - t0, bytes, chunks, timing: r.headers.get('server-timing') || ''};
}`

type ttfbWorkerResult struct {
	Status int     `json:"status"`
	Head   float64 `json:"head"`
	First  float64 `json:"first"`
	Total  float64 `json:"total"`
	Bytes  int64   `json:"bytes"`
	Chunks int     `json:"chunks"`
	Timing string  `json:"timing"`
}

// ttfbWorker measures, in Chromium and in the same run, the time to the
// first verified byte of a 1 MiB asset through the worker from a node
// 10 ms away over WebTransport, with the node answering protocol version
// 1 (the plain CAR: the worker releases nothing of a 256 KiB block before
// all of it arrived and was hashed) and version 2 (bao16: each 16 KiB
// group is released once verified). Two devnets serve the same site, one
// with nodes that do not use bao16; their origins are measured in
// alternation, with the worker's WebTransport session open (warm) and
// with the worker stopped before the fetch (cold: wasm start, session
// document, QUIC handshake and slow start over the delay).
func ttfbWorker(ctx context.Context, cfg Config, tmp string, res *Results) error {
	siteDir := filepath.Join(tmp, "ttfbw-site")
	if err := os.CopyFS(siteDir, web.Demo); err != nil {
		return fmt.Errorf("copy demo site: %w", err)
	}
	asset := make([]byte, ttfbSize)
	rng := rand.New(rand.NewChaCha8([32]byte{'t', 't', 'f', 'b'}))
	for i := range asset {
		asset[i] = byte(rng.Uint32())
	}
	if err := os.MkdirAll(filepath.Join(siteDir, "bench"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(siteDir, filepath.FromSlash(ttfbFile)), asset, 0o644); err != nil {
		return err
	}

	type variant struct {
		name string // v1, v2
		bao  bool
		site string
		d    *devnet.Devnet
	}
	variants := []*variant{{name: "v1"}, {name: "v2", bao: true}}
	var closers []interface{ Close() error }
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	for _, v := range variants {
		d, err := devnet.New(ctx, devnet.Config{
			DataDir:        filepath.Join(tmp, "ttfbw-"+v.name),
			Listen:         "127.0.0.1:0",
			Nodes:          1,
			DemoDir:        siteDir,
			NodeHost:       ttfbWorkerHost,
			NodeDisableBao: !v.bao,
			Logger:         cfg.Logger,
		})
		if err != nil {
			return fmt.Errorf("ttfb-worker devnet %s: %w", v.name, err)
		}
		closers = append(closers, d)
		n := d.Nodes()[0]
		for _, f := range []struct {
			udp bool
			url string
			rtt time.Duration
		}{{true, n.WebTransportURL(), nodeRTT}, {false, n.HTTPURL(), 0}} {
			u, err := url.Parse(f.url)
			if err != nil || u.Port() == "" {
				return fmt.Errorf("node URL %q has no port", f.url)
			}
			nc := netem.Config{Listen: net.JoinHostPort(ttfbWorkerHost, u.Port()), Target: net.JoinHostPort("127.0.0.1", u.Port()),
				Up: netem.Link{Delay: f.rtt / 2}, Down: netem.Link{Delay: f.rtt / 2}}
			if f.udp {
				p, err := netem.NewUDP(nc)
				if err != nil {
					return err
				}
				closers = append(closers, p)
			} else {
				p, err := netem.NewTCP(nc)
				if err != nil {
					return err
				}
				closers = append(closers, p)
			}
		}
		stop, err := runDevnet(ctx, d, 30*time.Second)
		if err != nil {
			return err
		}
		defer stop()
		v.d, v.site = d, strings.TrimRight(d.SiteURL(devnet.SiteName), "/")
		gu, err := url.Parse(d.Gateway().URL())
		if err != nil || gu.Port() == "" {
			return fmt.Errorf("gateway URL %q has no port", d.Gateway().URL())
		}
		gp, err := netem.NewTCP(netem.Config{Listen: net.JoinHostPort(ttfbWorkerGatewayHost, gu.Port()), Target: net.JoinHostPort("127.0.0.1", gu.Port()),
			Up: netem.Link{Delay: gatewayRTT / 2}, Down: netem.Link{Delay: gatewayRTT / 2}})
		if err != nil {
			return err
		}
		closers = append(closers, gp)
	}
	siteURL, err := url.Parse(variants[0].site)
	if err != nil {
		return err
	}
	b, err := browser.Start(ctx, browser.Config{
		UserDataDir: filepath.Join(tmp, "profile-ttfbw"),
		WaitTimeout: 30 * time.Second,
		Flags:       []string{"host-resolver-rules=MAP " + siteURL.Hostname() + " " + ttfbWorkerGatewayHost},
	})
	if err != nil {
		return err
	}
	defer b.Close()
	for _, v := range variants {
		if err := b.Navigate(ctx, v.site+"/"); err != nil {
			return err
		}
		if err := b.WaitController(ctx); err != nil {
			return err
		}
	}

	// As a visitor's browser: no DevTools event per chunk of a body (the
	// gateway rows below turn the Network domain on for their bypass).
	events, err := quietNetworkEvents(ctx, b)
	if err != nil {
		return err
	}
	runs := max(cfg.Runs, 15)
	type series struct {
		warm, cold, warmTotal, chunks []float64
		coldFallback                  int // cold fetches the gateway answered while the wasm booted
	}
	got := map[string]*series{}
	for i := 0; i <= runs; i++ { // round 0 warms up
		for _, v := range variants {
			s := got[v.name]
			if s == nil {
				s = &series{}
				got[v.name] = s
			}
			if err := b.Navigate(ctx, v.site+"/"); err != nil {
				return err
			}
			if err := b.WaitController(ctx); err != nil {
				return err
			}
			for _, cold := range []bool{false, true} {
				if cold {
					if err := b.StopAllWorkers(ctx); err != nil {
						return err
					}
				}
				var r ttfbWorkerResult
				var tr string
				for attempt := 0; ; attempt++ {
					var err error
					r, err = browser.Call[ttfbWorkerResult](ctx, b, ttfbWorkerJS, fmt.Sprintf("/%s?run=%d-%v-%d", ttfbFile, i, cold, attempt))
					if err != nil {
						return fmt.Errorf("ttfb-worker %s: %w", v.name, err)
					}
					if r.Status != 200 || r.Bytes != ttfbSize || r.First < 0 {
						return fmt.Errorf("ttfb-worker %s: status %d, %d bytes", v.name, r.Status, r.Bytes)
					}
					tr, _ = timing(r.Timing, "verity")
					if cold || tr != "first-visit" || attempt == 40 {
						break
					}
					// After the navigation the worker may still be booting
					// its wasm: it passes a no-store fetch to the network.
					// The warm rows wait until it answers from the node.
					time.Sleep(250 * time.Millisecond)
				}
				if cold && tr == "first-visit" {
					// The cold-start fallback: the gateway answered while
					// the wasm booted. Not a node's first byte: counted,
					// not timed.
					if i > 0 {
						s.coldFallback++
					}
					continue
				}
				if tr != "webtransport" {
					return fmt.Errorf("ttfb-worker %s: served by %q (Server-Timing %q), not a node over WebTransport", v.name, tr, r.Timing)
				}
				if os.Getenv("VERITY_BENCH_TIMINGS") != "" {
					fmt.Fprintf(os.Stderr, "ttfb-worker %s round %d cold=%v: head %.1f ms, first chunk %.1f ms, last %.1f ms, %d chunks; Server-Timing %s\n",
						v.name, i, cold, r.Head, r.First, r.Total, r.Chunks, r.Timing)
				}
				if i == 0 {
					continue
				}
				if cold {
					s.cold = append(s.cold, r.First)
				} else {
					s.warm = append(s.warm, r.First)
					s.warmTotal = append(s.warmTotal, r.Total)
					s.chunks = append(s.chunks, float64(r.Chunks))
				}
			}
		}
	}
	// The same fetch from the gateway 80 ms away, the worker bypassed: the
	// first verified byte the site's origin gives without the worker. The
	// bypass needs the DevTools Network domain: these fetches send their
	// body events to the bench.
	if err := events.none("ttfb-worker worker rows", 0); err != nil {
		return err
	}
	if err := b.BypassServiceWorker(ctx, true); err != nil {
		return err
	}
	gwEvents := events.count()
	gwFirst := map[string][]float64{}
	for _, v := range variants {
		if err := b.Navigate(ctx, v.site+"/"); err != nil {
			return errors.Join(err, b.BypassServiceWorker(ctx, false))
		}
		for i := 0; i <= runs; i++ {
			r, err := browser.Call[ttfbWorkerResult](ctx, b, ttfbWorkerJS, fmt.Sprintf("/%s?gateway=%d", ttfbFile, i))
			if err != nil {
				return errors.Join(fmt.Errorf("ttfb-worker gateway: %w", err), b.BypassServiceWorker(ctx, false))
			}
			tr, _ := timing(r.Timing, "verity")
			if r.Status != 200 || r.Bytes != ttfbSize || tr != "first-visit" {
				return errors.Join(fmt.Errorf("ttfb-worker gateway: status %d, %d bytes, served by %q", r.Status, r.Bytes, tr), b.BypassServiceWorker(ctx, false))
			}
			if r.Head < float64(gatewayRTT.Milliseconds()) {
				return errors.Join(fmt.Errorf("ttfb-worker gateway: an answer in %.1f ms, less than the %v RTT: the forwarder is not in the path", r.Head, gatewayRTT), b.BypassServiceWorker(ctx, false))
			}
			if i > 0 {
				gwFirst[v.name] = append(gwFirst[v.name], r.First)
			}
		}
	}
	if err := b.BypassServiceWorker(ctx, false); err != nil {
		return err
	}
	gwEvents = events.count() - gwEvents
	// Each node served what its variant says.
	for _, v := range variants {
		m, err := browser.Scrape(ctx, v.d.Nodes()[0].HTTPURL()+"/metrics")
		if err != nil {
			return err
		}
		if n := m.Sum("verity_node_bao_streams_total", nil); (n > 0) != v.bao {
			return fmt.Errorf("ttfb-worker %s: the node sent %v bao16 bodies", v.name, n)
		}
	}
	desc := map[string]string{
		"v1": "protocol v1 (plain CAR: a 256 KiB block is released once whole)",
		"v2": "protocol v2 (bao16: each 16 KiB group released once verified)",
	}
	for _, v := range variants {
		s := got[v.name]
		res.add("ttfb_1m_worker_node_10ms_"+v.name, median(s.warm), "ms", fmt.Sprintf("1 MiB through the worker, node %v RTT over WebTransport (session open), %s: fetch() → first body chunk in the page; median of %d", nodeRTT, desc[v.name], len(s.warm)))
	}
	for _, v := range variants {
		s := got[v.name]
		if len(s.cold) == 0 {
			res.add("ttfb_1m_worker_cold_fallbacks_"+v.name, float64(s.coldFallback), "fetches", "with the worker stopped first, every no-store fetch was answered by the gateway (not delayed in this section) while the wasm booted, as the worker does by design: no node figure")
			continue
		}
		res.add("ttfb_1m_worker_cold_node_10ms_"+v.name, median(s.cold), "ms", fmt.Sprintf("the same with the worker stopped first (wasm start, new QUIC session and slow start over the delay), %s; median of the %d served by the node (%d more were answered by the gateway, not delayed here, while the wasm booted)", v.name, len(s.cold), s.coldFallback))
	}
	for _, v := range variants {
		s := got[v.name]
		res.add("load_1m_worker_node_10ms_"+v.name, median(s.warmTotal), "ms", fmt.Sprintf("the same, warm: fetch() → last byte, %s, the body in %.0f chunks (median); median of %d", v.name, median(s.chunks), len(s.warmTotal)))
	}
	res.add("ttfb_1m_page_gateway_80ms", median(append(gwFirst["v1"], gwFirst["v2"]...)), "ms", fmt.Sprintf("the same 1 MiB in the page with the worker bypassed, from the gateway %v RTT away (TCP terminated at the forwarder: no handshake or slow start over the delay): fetch() → first body chunk; median of %d; DevTools Network domain on for the bypass: %d Network.dataReceived over its %d fetches", gatewayRTT, len(gwFirst["v1"])+len(gwFirst["v2"]), gwEvents, 2*(runs+1)))
	res.ratio("ratio_ttfb_page_worker_v2_vs_gateway", "ttfb_1m_worker_node_10ms_v2", "ttfb_1m_page_gateway_80ms", "first verified byte of 1 MiB in the page: through the worker from the node 10 ms away (bao16) over the gateway 80 ms away; target ≤ 0.35")
	res.ratio("ratio_ttfb_worker_v1_vs_v2", "ttfb_1m_worker_node_10ms_v1", "ttfb_1m_worker_node_10ms_v2", "first verified byte through the worker, plain CAR vs bao16, session open")
	if len(got["v1"].cold) > 0 && len(got["v2"].cold) > 0 {
		res.ratio("ratio_ttfb_worker_cold_v1_vs_v2", "ttfb_1m_worker_cold_node_10ms_v1", "ttfb_1m_worker_cold_node_10ms_v2", "the same, worker stopped first")
	}
	return nil
}
