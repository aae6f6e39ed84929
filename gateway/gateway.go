package gateway

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/ratelimit"
	"github.com/verity-cdn/verity/internal/redirects"
)

// The coordinator is what `verity gateway` passes as Nodes, Offers and
// Accounts, its router as ScoreSink and its ledger as Charges.
var (
	_ RankedNodeSource = (*coordinator.Coordinator)(nil)
	_ PlacementSource  = (*coordinator.Coordinator)(nil)
	_ OfferRelay       = (*coordinator.Coordinator)(nil)
	_ AccountSource    = (*coordinator.Coordinator)(nil)
	_ ScoreSink        = (*coordinator.Router)(nil)
	_ Charger          = (*ledger.Ledger)(nil)
	_ Holder           = (*ledger.Ledger)(nil)
)

// Gateway is the HTTP front door of every site origin.
type Gateway struct {
	cfg          Config
	log          *slog.Logger
	ln           net.Listener
	srv          *http.Server
	assets       *assets
	cache        *htmlCache
	rules        siteRules[redirects.Rules] // _redirects by root
	headerRules  siteRules[headers.Rules]   // _headers by root
	metrics      *metrics
	health       *nodeHealth
	offers       addrLimit           // WebRTC offers per client
	scoreLimit   addrLimit           // score reports per client
	trafficLimit addrLimit           // traffic reports per client
	traffic      *traffic            // requests counted per site, to the bus; nil without Config.Bus
	vouchers     addrLimit           // vouchers issued per client
	payKey       ed25519.PrivateKey  // signs vouchers; nil when payments are off
	meter        *ledger.Meter       // charges served bytes, with Config.Charges
	reports      reportRelay         // visitors' reports on their way to the bus
	records      noderecord.Verifier // node records, each signature checked once

	https *httpsParts // Config.HTTPS; nil without it

	requests addrLimit                // requests per client
	proxies  ratelimit.TrustedProxies // Config.TrustedProxies

	metricsHandler http.Handler // /metrics on the gateway's own host; nil without a Gatherer
	console        http.Handler // /console/ on the gateway's own host; nil without Config.Console

	bgCtx    context.Context // canceled by Close; parent of background work
	bgCancel context.CancelFunc
	bg       sync.WaitGroup // event emission

	mu    sync.Mutex
	sites map[string]*siteState // by site name

	closeOnce sync.Once
	closeErr  error
}

// siteState is what the gateway remembers of a site's roots.
type siteState struct {
	root     string
	previous map[string]time.Time // earlier root → servable until
}

// New checks cfg, loads the worker's assets and binds the listener (or
// takes Config.Listener). Serve with Run; release with Close.
func New(cfg Config) (_ *Gateway, err error) {
	cfg, err = cfg.normalize()
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		cfg:   cfg,
		log:   cfg.Logger,
		cache: newHTMLCache(cfg.MaxHTMLCacheBytes),
		sites: make(map[string]*siteState),
	}
	g.bgCtx, g.bgCancel = context.WithCancel(context.Background())
	g.health = newNodeHealth(cfg.NodeBackoff, cfg.Now)
	g.offers = g.newAddrLimit(cfg.WebRTCOfferRate, cfg.WebRTCOfferBurst)
	g.scoreLimit = g.newAddrLimit(cfg.ScoresRate, cfg.ScoresBurst)
	g.trafficLimit = g.newAddrLimit(cfg.TrafficRate, cfg.TrafficBurst)
	g.vouchers = g.newAddrLimit(cfg.Payments.VoucherRate, cfg.Payments.VoucherBurst)
	g.requests = g.newAddrLimit(cfg.RequestRate, cfg.RequestBurst)
	g.proxies = ratelimit.TrustedProxies(cfg.TrustedProxies)
	if g.assets, err = loadAssets(cfg.Assets, g.log); err != nil {
		return nil, fmt.Errorf("gateway: load assets: %w", err)
	}
	if g.metrics, err = newMetrics(cfg.Registerer, func() float64 { return float64(g.cache.bytes()) }); err != nil {
		return nil, fmt.Errorf("gateway: register metrics: %w", err)
	}
	defer func() {
		if err != nil {
			if cfg.Listener != nil {
				_ = cfg.Listener.Close()
			}
			g.closeParts()
		}
	}()
	{
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		err = g.startPayments(ctx)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	if cfg.Charges != nil {
		g.meter = ledger.NewMeter(ledger.MeterConfig{Applier: cfg.Charges, Name: cfg.Name, Interval: cfg.MeterInterval, Logger: g.log.With("component", "meter"), Now: cfg.Now})
	}
	if cfg.Bus != nil {
		g.traffic = newTraffic(cfg.Bus, cfg.Name, cfg.TrafficInterval, g.log.With("component", "traffic"))
	}
	if w, ok := cfg.Sites.(SiteWatcher); ok {
		w.WatchSites(g.observeChange)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("gateway: listen: %w", err)
		}
	}
	g.ln = g.limitListener(ln)
	if cfg.Gatherer != nil {
		g.metricsHandler = promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})
	}
	if cfg.Console != nil {
		g.console = http.StripPrefix(ConsolePath+"/", http.FileServerFS(cfg.Console))
	}
	g.srv = &http.Server{
		Handler:           g,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	if cfg.HTTPS != nil {
		if err = g.startHTTPS(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Run serves until ctx is done or Close is called, then shuts down
// gracefully (in-flight requests get a few seconds) and returns.
func (g *Gateway) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	servers := 1
	go func() { errc <- g.srv.Serve(g.ln) }()
	if g.https != nil {
		servers++
		go func() { errc <- g.https.srv.Serve(g.https.ln) }()
		if g.https.h3 != nil {
			servers++
			go func() { errc <- g.https.h3.Serve(g.cfg.HTTPS.HTTP3) }()
		}
	}
	var first error
	select {
	case err := <-errc:
		servers--
		if !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			first = err
		}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.srv.Shutdown(sctx); err != nil {
		g.srv.Close()
	}
	if g.https != nil {
		if err := g.https.srv.Shutdown(sctx); err != nil {
			g.https.srv.Close()
		}
		if g.https.h3 != nil {
			if err := g.https.h3.Shutdown(sctx); err != nil {
				g.https.h3.Close()
			}
		}
	}
	for ; servers > 0; servers-- {
		<-errc
	}
	return first
}

// startTimeout bounds the setup New does on the bus.
const startTimeout = 30 * time.Second

// Close stops the server at once, releases the listener and charges what
// was served and not charged yet. It is idempotent and safe to call
// concurrently with Run.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		err := g.srv.Close()
		if lerr := g.ln.Close(); err == nil && lerr != nil && !errors.Is(lerr, net.ErrClosed) {
			err = lerr
		}
		if g.https != nil {
			_ = g.https.srv.Close()
			_ = g.https.ln.Close()
			if g.https.h3 != nil {
				_ = g.https.h3.Close()
				_ = g.cfg.HTTPS.HTTP3.Close()
			}
		}
		g.closeParts()
		g.closeErr = err
	})
	return g.closeErr
}

// closeParts stops what New started besides the listener.
func (g *Gateway) closeParts() {
	if g.meter != nil {
		_ = g.meter.Close()
	}
	g.traffic.close()
	g.mu.Lock()
	g.bgCancel()
	g.mu.Unlock()
	g.bg.Wait()
}

// Sites is the gateway's SiteSource, Config.Sites.
func (g *Gateway) Sites() SiteSource { return g.cfg.Sites }

// Addr is the bound listen address.
func (g *Gateway) Addr() net.Addr { return g.ln.Addr() }

// URL is the gateway's own base URL (metrics, health), e.g.
// http://127.0.0.1:8080.
func (g *Gateway) URL() string { return "http://" + g.ln.Addr().String() }

// SiteURL is the origin URL of site name, e.g. http://demo.localhost:8080/.
func (g *Gateway) SiteURL(name string) string {
	if g.https != nil && isNamedHost(g.cfg.Domain) {
		return g.HTTPSURL(name+"."+g.cfg.Domain) + "/"
	}
	_, port, _ := net.SplitHostPort(g.ln.Addr().String())
	host := name + "." + g.cfg.Domain
	if port != "80" {
		host += ":" + port
	}
	return "http://" + host + "/"
}

// observeChange is the SiteWatcher callback.
func (g *Gateway) observeChange(site Site, previous string) {
	g.mu.Lock()
	if _, ok := g.sites[site.Name]; !ok && previous != "" {
		g.sites[site.Name] = &siteState{root: previous, previous: make(map[string]time.Time)}
	}
	g.mu.Unlock()
	g.observe(site)
}

// observe records site's current root; when it changed, the previous root
// stays servable by the fallback for RootGrace and cached HTML is purged.
func (g *Gateway) observe(site Site) {
	g.mu.Lock()
	st, ok := g.sites[site.Name]
	if !ok {
		st = &siteState{previous: make(map[string]time.Time)}
		g.sites[site.Name] = st
	}
	changed := st.root != site.Root
	replaced := changed && st.root != ""
	if changed {
		now := g.cfg.Now()
		if st.root != "" {
			st.previous[st.root] = now.Add(g.cfg.RootGrace)
		}
		delete(st.previous, site.Root)
		for r, until := range st.previous {
			if now.After(until) {
				delete(st.previous, r)
			}
		}
		st.root = site.Root
	}
	g.mu.Unlock()
	if changed {
		if n := g.cache.purgeSite(site.Name, site.Root); n > 0 || ok {
			g.log.Info("site root changed", "site", site.Name, "root", site.Root, "purged", n)
		}
	}
	if replaced && g.cfg.Bus != nil {
		g.emitPurged(site)
	}
}

// emitPurged emits cache.purged for site in the background. Its id is
// derived from the gateway, site and root, so noticing one change twice
// (by the watch and by a request) stores one event.
func (g *Gateway) emitPurged(site Site) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.bgCtx.Err() != nil {
		return
	}
	g.bg.Add(1)
	go func() {
		defer g.bg.Done()
		id := string(events.TypeCachePurged) + "/" + g.cfg.Name + "/" + site.Name + "/" + site.Root
		ev, err := events.NewWithID(id, events.TypeCachePurged, g.cfg.Name, events.CachePurged{
			Site: site.Name, Root: site.Root, Gateway: g.cfg.Name,
		})
		if err == nil {
			ctx, cancel := context.WithTimeout(g.bgCtx, 10*time.Second)
			err = g.cfg.Bus.Publish(ctx, ev)
			cancel()
		}
		if err != nil && g.bgCtx.Err() == nil {
			g.log.Warn("cache.purged not published", "site", site.Name, "err", err)
		}
	}()
}

// rootAllowed reports whether root is site's current root or a previous one
// still within its grace period.
func (g *Gateway) rootAllowed(site Site, root string) bool {
	if root == site.Root {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	st, ok := g.sites[site.Name]
	if !ok {
		return false
	}
	until, ok := st.previous[root]
	return ok && !g.cfg.Now().After(until)
}

// ServeHTTP routes by Host: NAME.<Domain> is a site origin, any other host
// is the gateway's own (metrics, health, Config.API).
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.admit(w, r) {
		return
	}
	if len(r.RequestURI) > MaxRequestURIBytes {
		writeError(w, r, http.StatusRequestURITooLong, fmt.Sprintf("request target over %d bytes", MaxRequestURIBytes))
		return
	}
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(host, ".")
	name, isSite := strings.CutSuffix(host, "."+g.cfg.Domain)
	if !isSite && g.cfg.Domains != nil && !g.isAdminHost(host) {
		// A custom domain attached to a site serves that site.
		if site, err := g.cfg.Domains.DomainSite(r.Context(), host); err == nil {
			name, isSite = site, true
		}
	}
	custom := !isSite && g.cfg.DNSLink != nil && !g.isAdminHost(host)
	if !isSite && !custom {
		g.serveAdmin(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w, rc: http.NewResponseController(w), stall: g.cfg.WriteStallTimeout}
	defer g.account(sw)
	var site Site
	if custom {
		root, err := g.cfg.DNSLink.ResolveDNSLink(r.Context(), host)
		if err != nil {
			g.fail(sw, r, err)
			return
		}
		// Billed to the site that published the root, or not served.
		owner, err := g.cfg.Sites.(SiteRoots).SiteOfRoot(r.Context(), root)
		if err != nil {
			g.fail(sw, r, fmt.Errorf("custom domain %s: %w", host, err))
			return
		}
		site = Site{Name: host, Root: root, Account: owner.Account}
		sw.billed = owner.Name
	} else {
		var err error
		if site, sw.billed, err = g.originSite(r.Context(), name); err != nil {
			g.fail(sw, r, err)
			return
		}
	}
	if site.Account == "" {
		// Every site is billed: one that names no account, to the default.
		site.Account = g.cfg.Payments.DefaultAccount
	}
	g.observe(site)
	sw.site = site
	g.serveSite(sw, r, site)
}

// originSite resolves the name of a site origin below Config.Domain: a
// site name, or <root>.preview for a preview deploy (PreviewSource). A
// preview is an origin of its own, named <root>.preview (its cache, its
// root state: a preview never counts as a change of its site's root),
// billed (billed) to the site that deployed it, as a custom domain is.
func (g *Gateway) originSite(ctx context.Context, name string) (site Site, billed string, err error) {
	if root, ok := strings.CutSuffix(name, PreviewSuffix); ok {
		ps, ok := g.cfg.Sites.(PreviewSource)
		if !ok {
			return Site{}, "", fmt.Errorf("%w: previews are not served here", ErrUnknownSite)
		}
		owner, err := ps.Preview(ctx, root)
		if err != nil {
			return Site{}, "", err
		}
		return Site{Name: name, Root: owner.Root, Account: owner.Account, Size: owner.Size}, owner.Name, nil
	}
	if !ValidSiteName(name) {
		return Site{}, "", fmt.Errorf("%w: %q", ErrUnknownSite, name)
	}
	site, err = g.cfg.Sites.Site(ctx, name)
	return site, "", err
}

// isAdminHost reports whether host serves the gateway's own API rather
// than a custom domain.
func (g *Gateway) isAdminHost(host string) bool {
	if host == "localhost" || host == g.cfg.Domain || net.ParseIP(host) != nil {
		return true
	}
	for _, h := range g.cfg.AdminHosts {
		if strings.EqualFold(strings.TrimSuffix(h, "."), host) {
			return true
		}
	}
	return false
}

func (g *Gateway) serveSite(w *statusWriter, r *http.Request, site Site) {
	path := r.URL.Path
	switch {
	case path == SessionPath:
		w.kind = kindSession
		g.serveSession(w, r, site)
	case path == ReportPath:
		w.kind = kindReport
		g.serveReport(w, r, site)
	case path == ScoresPath:
		w.kind = kindReport
		g.serveScores(w, r, site)
	case path == TrafficPath:
		w.kind = kindReport
		g.serveTraffic(w, r, site)
	case strings.HasPrefix(path, WebRTCPrefix):
		w.kind = kindWebRTC
		g.serveWebRTCOffer(w, r)
	case strings.HasPrefix(path, FallbackPrefix+"/"):
		w.kind = kindCARFallback
		if err := g.checkCredit(site); err != nil {
			g.fail(w, r, err)
			return
		}
		w.metered = true
		g.serveFallback(w, r, site)
	default:
		if f, cc, kind, ok := g.assets.lookup(path); ok {
			w.kind = kind
			if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
				return
			}
			if f == nil {
				g.fail(w, r, fmt.Errorf("%w: %s", ErrNotFound, path))
				return
			}
			if path == WorkerPath {
				w.Header().Set("Service-Worker-Allowed", "/")
			}
			serveStatic(w, r, f, cc)
			return
		}
		if strings.HasPrefix(path, "/.verity/") {
			w.kind = kindAsset
			g.fail(w, r, fmt.Errorf("%w: %s", ErrNotFound, path))
			return
		}
		if err := g.checkCredit(site); err != nil {
			g.fail(w, r, err)
			return
		}
		w.metered = true
		g.serveContent(w, r, site)
	}
}

func (g *Gateway) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		if g.metricsHandler == nil {
			http.NotFound(w, r)
			return
		}
		g.metricsHandler.ServeHTTP(w, r)
	case "/healthz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write([]byte("ok\n"))
	default:
		if g.cfg.API != nil && strings.HasPrefix(r.URL.Path, "/v1/") {
			g.cfg.API.ServeHTTP(w, r)
			return
		}
		if g.console != nil && (r.URL.Path == ConsolePath || strings.HasPrefix(r.URL.Path, ConsolePath+"/")) {
			g.serveConsole(w, r)
			return
		}
		http.NotFound(w, r)
	}
}

// SiteNameRule is the rule ValidateSiteName checks, as the docs state
// it (a test holds README.md and docs/ to it): a site's name is also the
// first label of its origin's host name.
const SiteNameRule = "one DNS label: 1 to 63 characters of a-z, 0-9 and -, not starting or ending with -"

// ValidSiteName reports whether name can name a site: one DNS label of
// lower-case letters, digits and inner hyphens.
func ValidSiteName(name string) bool { return ValidateSiteName(name) == nil }

// ValidateSiteName checks that name can name a site, one DNS label (RFC
// 1035 §2.3.1, lower case): 1 to 63 characters of a-z, 0-9 and '-', not
// starting or ending with '-'. It returns a *SiteNameError saying why not.
func ValidateSiteName(name string) error {
	bad := func(reason string) error { return &SiteNameError{Name: name, Reason: reason} }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 63:
		return bad("longer than 63 characters")
	case name[0] == '-' || name[len(name)-1] == '-':
		return bad("starts or ends with a hyphen")
	}
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return bad(fmt.Sprintf("character %q at byte %d is not allowed", c, i))
		}
	}
	return nil
}

// allowMethods answers 405 unless r's method is one of methods.
func allowMethods(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, r, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method))
	return false
}

// fail answers err with the status statusOf maps it to.
func (g *Gateway) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		// The client is gone; nobody reads this answer.
		g.log.Debug("request cancelled", "host", r.Host, "path", r.URL.Path, "err", err)
		w.WriteHeader(statusClientClosed)
		return
	}
	code := statusOf(err)
	if code >= 500 {
		g.log.Warn("request failed", "host", r.Host, "path", r.URL.Path, "status", code, "err", err)
	} else {
		g.log.Debug("request refused", "host", r.Host, "path", r.URL.Path, "status", code, "err", err)
	}
	writeError(w, r, code, errorMessage(err))
}

// statusClientClosed is recorded for requests whose client went away
// before the answer was ready (the nginx convention).
const statusClientClosed = 499

// writeError writes a small error body: JSON under /.verity/, text elsewhere.
func writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Del("ETag")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(r.URL.Path, "/.verity/") {
		h.Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if r.Method != http.MethodHead {
			_, _ = w.Write([]byte(`{"error":` + strconv.Quote(msg) + "}\n"))
		}
		return
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(strconv.Itoa(code) + " " + msg + "\n"))
	}
}

// statusWriter records the status and body bytes of a response for metrics.
//
// Every write first pushes the connection's write deadline stall ahead, so a
// client that stops reading is cut off while one that keeps reading, however
// slowly, is not.
type statusWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	kind  string
	code  int
	bytes int64
	// as is the status a _redirects rule (or a custom 404 page) gives the
	// file served in its place: a 200 written becomes it.
	as int
	// site and metered: the response is on the HTTPS path of site (content
	// or CAR fallback), charged to its account, for the site billed when
	// set (the site that published a custom domain's root), else site.
	site    Site
	metered bool
	billed  string
	// siteHeaders are the site's _headers for the requested path, applied
	// to a file's response (200, 206, 304, or a page served as an error
	// status) when its header is written.
	siteHeaders *headers.Result
}

func (w *statusWriter) WriteHeader(code int) {
	if w.siteHeaders != nil && w.code == 0 && (code == http.StatusOK || code == http.StatusPartialContent || code == http.StatusNotModified) {
		w.siteHeaders.Apply(w.Header(), w.as >= 400)
	}
	if w.as != 0 && code == http.StatusOK {
		code = w.as
	}
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.rc == nil || w.stall <= 0 {
		n, err := w.ResponseWriter.Write(p)
		w.bytes += int64(n)
		return n, err
	}
	// Written in slices, each with a fresh deadline: the deadline bounds a
	// stall, not the time a whole large body takes.
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), stallChunk)]
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.stall))
		n, err := w.ResponseWriter.Write(chunk)
		written += n
		w.bytes += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

// stallChunk is the largest slice written under one write deadline.
const stallChunk = 64 << 10

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (g *Gateway) account(w *statusWriter) {
	kind := w.kind
	if kind == "" {
		kind = kindAsset
	}
	code := w.code
	if code == 0 {
		code = http.StatusOK
	}
	if p := recover(); p != nil {
		g.metrics.requests.WithLabelValues(kind, "aborted").Inc()
		g.metrics.bytesServed.WithLabelValues(kind).Add(float64(w.bytes))
		panic(p)
	}
	g.metrics.requests.WithLabelValues(kind, strconv.Itoa(code)).Inc()
	g.metrics.bytesServed.WithLabelValues(kind).Add(float64(w.bytes))
	g.meterServed(w)
	g.countServed(w)
}
