package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil"
)

// demoDir is the demo site the devnet publishes by default, relative to
// this package.
const demoDir = "../web/demo"

// siteFile is one file of the published site.
type siteFile struct {
	Path   string // URL path below the site root, "/" separated, no leading slash
	Size   int64
	SHA256 string // hex
}

// readSite lists the files below dir with their SHA-256.
func readSite(t *testing.T, dir string) []siteFile {
	t.Helper()
	var files []siteFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		files = append(files, siteFile{Path: filepath.ToSlash(rel), Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		return nil
	})
	if err != nil {
		t.Fatalf("reading site %s: %v", dir, err)
	}
	if len(files) == 0 {
		t.Fatalf("site %s has no files", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// assets are the site's files other than HTML documents.
func assets(files []siteFile) []siteFile {
	var out []siteFile
	for _, f := range files {
		if !strings.HasSuffix(f.Path, ".html") {
			out = append(out, f)
		}
	}
	return out
}

// largest returns the largest file of files.
func largest(files []siteFile) siteFile {
	var big siteFile
	for _, f := range files {
		if f.Size > big.Size {
			big = f
		}
	}
	return big
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// htmlTitle returns the <title> of the HTML file.
func htmlTitle(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := titleRE.FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s has no <title>", path)
	}
	return strings.TrimSpace(string(m[1]))
}

// env is one devnet and one browser.
type env struct {
	t       *testing.T
	net     *devnet.Devnet
	b       *browser.Browser
	site    string // http://demo.localhost:PORT (no trailing slash)
	metrics string // the gateway's /metrics URL
	dir     string // the published directory
	files   []siteFile
}

type envConfig struct {
	demoDir      string        // default demoDir
	browserFlags []string      // extra Chromium switches
	browserEnv   []string      // extra environment for Chromium, NAME=value
	webrtcOnly   bool          // nodes without WebTransport, reachable over WebRTC only
	s3           bool          // serve the S3 API (devnet.Config.S3Listen on a loopback port)
	readyTimeout time.Duration // bound on publishing the site (scaled); default 20 s
	// nodeLink, when set, puts the nodes behind netem forwarders shaping
	// the browser's traffic to them (linkNodes).
	nodeLink *netem.Link
	// nodes is the number of storage nodes (default 2).
	nodes int
	// nodeMaxEgress caps each node's content bytes per second
	// (devnet.Config.NodeMaxEgress, `verity node --max-egress`); 0: no cap.
	nodeMaxEgress int64
}

// logWriter sends log lines to t.Log, until the test ends.
type logWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done && testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *logWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// newEnv starts a devnet with two nodes in t.TempDir() on loopback ports and
// a fresh browser; both stop when the test ends.
func newEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	if err := browser.CheckInstalled(""); err != nil {
		t.Fatalf("browser tests need Chromium: %v", err)
	}
	dir := cfg.demoDir
	if dir == "" {
		dir = demoDir
	}
	lw := &logWriter{t: t}
	t.Cleanup(lw.stop)
	logger := slog.New(slog.NewTextHandler(lw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	nodeHost := ""
	if cfg.nodeLink != nil {
		nodeHost = linkedNodeHost
	}
	s3Listen := ""
	if cfg.s3 {
		s3Listen = "127.0.0.1:0"
	}
	if cfg.nodes <= 0 {
		cfg.nodes = 2
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := devnet.New(ctx, devnet.Config{
		S3Listen:      s3Listen,
		NodeHost:      nodeHost,
		DataDir:       t.TempDir(),
		Listen:        "127.0.0.1:0",
		Nodes:         cfg.nodes,
		NodeMaxEgress: cfg.nodeMaxEgress,
		DemoDir:       cfg.demoDir,
		WebRTCOnly:    cfg.webrtcOnly,
		Logger:        logger,
	})
	if err != nil {
		cancel()
		t.Fatalf("devnet.New: %v", err)
	}
	if cfg.nodeLink != nil {
		linkNodes(t, d, *cfg.nodeLink)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-runErr:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Logf("devnet.Run: %v", err)
			}
		case <-time.After(testutil.Scale(10 * time.Second)):
			t.Errorf("devnet.Run did not return within %s of its context ending", testutil.Scale(10*time.Second))
		}
		if err := d.Close(); err != nil {
			t.Logf("devnet.Close: %v", err)
		}
	})

	if cfg.readyTimeout <= 0 {
		cfg.readyTimeout = 20 * time.Second
	}
	rctx, rcancel := context.WithTimeout(ctx, testutil.Scale(cfg.readyTimeout))
	if err := d.WaitReady(rctx); err != nil {
		rcancel()
		t.Fatal(err)
	}
	rcancel()

	e := &env{
		t:       t,
		net:     d,
		site:    strings.TrimRight(d.SiteURL(devnet.SiteName), "/"),
		metrics: strings.TrimRight(d.Gateway().URL(), "/") + "/metrics",
		dir:     dir,
		files:   readSite(t, dir),
	}
	waitHTTP(t, e.site+"/", 20*time.Second)

	b, err := browser.Start(t.Context(), browser.Config{
		UserDataDir: t.TempDir(),
		Flags:       cfg.browserFlags,
		Env:         cfg.browserEnv,
		WaitTimeout: testutil.Scale(20 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.b = b
	return e
}

// useGateway starts another gateway for the devnet's sites (on a loopback
// port, logging to the test) and points the env at it.
func (e *env) useGateway(cfg gateway.Config) {
	e.t.Helper()
	cfg.Listen = "127.0.0.1:0"
	if cfg.Logger == nil {
		lw := &logWriter{t: e.t}
		e.t.Cleanup(lw.stop)
		cfg.Logger = slog.New(slog.NewTextHandler(lw, nil)).With("part", "gateway2")
	}
	cfg.AllowPrivateAddrs = true // the devnet's nodes are on loopback
	g, err := gateway.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		g.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		g.Close()
		<-done
	})
	e.site = strings.TrimRight(g.SiteURL(devnet.SiteName), "/")
	e.metrics = strings.TrimRight(g.URL(), "/") + "/metrics"
	waitHTTP(e.t, e.site+"/", 20*time.Second)
}

// waitHTTP polls url until it answers 200, for at most d (scaled).
func waitHTTP(t *testing.T, url string, d time.Duration) {
	t.Helper()
	client := browser.NewHTTPClient(2 * time.Second)
	testutil.EventuallyErr(t, d, url+" to answer 200", func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// ctx bounds one phase of a test to d (scaled).
func (e *env) ctx(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(e.t.Context(), testutil.Scale(d))
	e.t.Cleanup(cancel)
	return ctx
}

// gatewayMetrics scrapes the gateway.
func (e *env) gatewayMetrics() browser.Metrics {
	e.t.Helper()
	m, err := browser.Scrape(e.t.Context(), e.metrics)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// nodeMetrics scrapes every node, keyed by node id.
func (e *env) nodeMetrics() map[string]browser.Metrics {
	e.t.Helper()
	out := map[string]browser.Metrics{}
	for _, n := range e.net.Nodes() {
		m, err := browser.Scrape(e.t.Context(), strings.TrimRight(n.HTTPURL(), "/")+"/metrics")
		if err != nil {
			e.t.Fatal(err)
		}
		out[nodeID(n)] = m
	}
	return out
}

// nodeIDs lists the devnet's node ids.
func (e *env) nodeIDs() map[string]bool {
	ids := map[string]bool{}
	for _, n := range e.net.Nodes() {
		ids[nodeID(n)] = true
	}
	return ids
}

func sumNodes(ms map[string]browser.Metrics, name string, match map[string]string) float64 {
	var s float64
	for _, m := range ms {
		s += m.Sum(name, match)
	}
	return s
}

// bytesServed is the gateway's verity_gateway_bytes_served_total of kind.
func bytesServed(m browser.Metrics, kind string) float64 {
	return m.Sum("verity_gateway_bytes_served_total", map[string]string{"kind": kind})
}

// visit opens the site's front page and checks it rendered: the title of
// index.html is the document's title.
func (e *env) visit() {
	e.t.Helper()
	if err := e.b.Navigate(e.ctx(30*time.Second), e.site+"/"); err != nil {
		e.t.Fatal(err)
	}
	e.visitTitle("index.html")
}

// visitTitle checks the page's title is the one of the site file rel.
func (e *env) visitTitle(rel string) {
	e.t.Helper()
	want := htmlTitle(e.t, filepath.Join(e.dir, filepath.FromSlash(rel)))
	got, err := browser.Eval[string](e.ctx(10*time.Second), e.b, `document.title`)
	if err != nil {
		e.t.Fatal(err)
	}
	if got != want {
		e.t.Fatalf("document.title = %q, want %q (from %s)", got, want, rel)
	}
}

type browserRequest = browser.WorkerRequest

// controlled visits the site, waits until the worker controls the page and
// reloads it, so every request of the page goes through the worker. It
// returns once the worker's Go side runs: until then the worker sends
// requests to the network rather than make them wait for the wasm.
func (e *env) controlled() {
	e.t.Helper()
	e.visit()
	if err := e.b.WaitController(e.ctx(30 * time.Second)); err != nil {
		e.t.Fatalf("the worker did not take control of %s: %v", e.site, err)
	}
	if _, err := e.b.WorkerStats(e.ctx(30 * time.Second)); err != nil { // answered once the Go worker runs
		e.t.Fatalf("the worker's Go side did not start: %v", err)
	}
}

// fetchFile fetches the site file in the page (cache: no-store) and checks
// its bytes equal the original's.
func (e *env) fetchFile(f siteFile) browser.FetchResult {
	e.t.Helper()
	res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+f.Path, &browser.FetchOptions{Cache: "no-store"})
	if err != nil {
		e.t.Fatalf("fetch /%s: %v", f.Path, err)
	}
	if res.Status != http.StatusOK || res.Error != "" {
		e.t.Fatalf("fetch /%s: status %d, body error %q, headers %v", f.Path, res.Status, res.Error, res.Headers)
	}
	if res.Size != f.Size || res.SHA256 != f.SHA256 {
		e.t.Fatalf("fetch /%s: %d bytes sha256 %s, want %d bytes sha256 %s", f.Path, res.Size, res.SHA256, f.Size, f.SHA256)
	}
	return res
}

// session is the part of /.verity/v1/session the tests read.
type session struct {
	Root  string `json:"root"`
	Nodes []struct {
		ID           string `json:"id"`
		WebTransport string `json:"webtransport"`
		HTTP         string `json:"http"`
	} `json:"nodes"`
}

func (e *env) session() session {
	e.t.Helper()
	resp, err := browser.NewHTTPClient(10 * time.Second).Get(e.site + "/.verity/v1/session")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s session
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		e.t.Fatalf("session: %v", err)
	}
	if s.Root == "" || len(s.Nodes) == 0 {
		e.t.Fatalf("session has no root or no nodes: %+v", s)
	}
	return s
}

// workerStat returns the worker's last record for the URL path p.
func workerStat(stats browser.WorkerStats, p string) (browser.WorkerRequest, bool) {
	for i := len(stats.Requests) - 1; i >= 0; i-- {
		r := stats.Requests[i]
		if r.URL == p || strings.HasSuffix(r.URL, p) {
			return r, true
		}
	}
	return browser.WorkerRequest{}, false
}

func describe(v any) string {
	b, _ := json.Marshal(v)
	return fmt.Sprintf("%s", b)
}
