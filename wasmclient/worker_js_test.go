//go:build js

package wasmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall/js"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// fakeNet replaces globalThis.fetch with CAR fixtures from testdata/js
// (written by TestJSFixtures natively) and records what was posted.
type fakeNet struct {
	root    string
	big     int
	targets map[string]string
	cars    map[string][]byte // file name → bytes, loaded up front: the fake
	// fetch runs inside a JS callback and must never block.

	mu      sync.Mutex
	reports []string
	fetches []string
	failCAR bool
}

func installFakeNet(t *testing.T) *fakeNet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "js", "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Root    string            `json:"root"`
		Big     string            `json:"big"`
		Targets map[string]string `json:"targets"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	n := &fakeNet{root: m.Root, targets: m.Targets, cars: map[string][]byte{}}
	for _, name := range m.Targets {
		if n.cars[name], err = os.ReadFile(filepath.Join("testdata", "js", name)); err != nil {
			t.Fatal(err)
		}
	}
	n.big, _ = strconv.Atoi(m.Big)
	orig := js.Global().Get("fetch")
	f := js.FuncOf(func(_ js.Value, args []js.Value) any {
		url := args[0].String()
		init := arg(args, 1)
		status, body, ctype := n.serve(url, init)
		resp := js.Global().Get("Response").New(body, map[string]any{
			"status": status, "headers": map[string]any{"Content-Type": ctype}})
		return jsPromise.Call("resolve", resp)
	})
	js.Global().Set("fetch", f)
	t.Cleanup(func() { js.Global().Set("fetch", orig); f.Release() })
	return n
}

func (n *fakeNet) serve(url string, init js.Value) (int, any, string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.fetches = append(n.fetches, url)
	switch {
	case url == SessionPath || strings.HasPrefix(url, SessionPath+"?key=s"):
		// The worker sends its session key; this gateway issues no voucher.
		doc := `{"version":1,"site":"demo","root":"` + n.root + `","ttl":30,"fallback":"/.verity/v1/ipfs",` +
			`"nodes":[{"id":"nx","webtransport":"https://127.0.0.1:1/verity/v1","certHashes":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="]}]}`
		return 200, doc, "application/json"
	case url == ReportPath:
		n.reports = append(n.reports, init.Get("body").String())
		return 204, js.Null(), "text/plain"
	case strings.HasPrefix(url, "/.verity/v1/ipfs/"):
		name, ok := n.targets[strings.TrimPrefix(url, "/.verity/v1")]
		if !ok {
			return 404, "no fixture for " + url, "text/plain"
		}
		if n.failCAR {
			return 502, "injected", "text/plain"
		}
		return 200, bytesToJS(n.cars[name]), CARAccept
	}
	return 404, "not found", "text/plain"
}

func newTestWorker(t *testing.T) *Worker {
	t.Helper()
	w, err := NewWorker(WorkerConfig{ChunkSize: 10000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

type jsResult struct {
	status  int
	headers map[string]string
	body    []byte
	err     error
	// verityBody is the Response's verityBody property, when it has one.
	verityBody []byte
}

// serve runs Handle for a Request built from url and headers and reads the
// Response fully through its ReadableStream, as the browser does.
func serve(t *testing.T, w *Worker, url string, headers map[string]any) jsResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := js.Global().Get("Request").New(url, map[string]any{"headers": headers})
	resp, err := await(ctx, w.Handle(req))
	if err != nil {
		t.Fatalf("Handle(%s): %v", url, err)
	}
	r := jsResult{status: resp.Get("status").Int(), headers: map[string]string{}}
	for _, name := range []string{"Content-Type", "Content-Length", "Content-Range", "ETag", "Accept-Ranges", "Location", "Server-Timing"} {
		if v := resp.Get("headers").Call("get", name); v.Type() == js.TypeString {
			r.headers[name] = v.String()
		}
	}
	vb := resp.Get("verityBody")
	buf, err := await(ctx, resp.Call("arrayBuffer"))
	// Read once the body was: the script stores these bytes after the
	// page read the answer, whose stream carried the same array.
	if vb.Truthy() {
		r.verityBody = make([]byte, vb.Get("byteLength").Int())
		js.CopyBytesToGo(r.verityBody, vb)
	}
	if err != nil {
		r.err = err
		return r
	}
	u := jsUint8Array.New(buf)
	r.body = make([]byte, u.Get("byteLength").Int())
	js.CopyBytesToGo(r.body, u)
	return r
}

func TestWorkerHandle(t *testing.T) {
	n := installFakeNet(t)
	w := newTestWorker(t)
	const origin = "http://demo.localhost:8080"

	r := serve(t, w, origin+"/", nil)
	if r.status != 200 || string(r.body) != "<!doctype html><p>hello from verity</p>" {
		t.Fatalf("/: %d %q %v", r.status, r.body, r.err)
	}
	if r.headers["Content-Type"] != "text/html; charset=utf-8" || r.headers["Accept-Ranges"] != "bytes" ||
		!strings.HasPrefix(r.headers["ETag"], `"b`) || r.headers["Content-Length"] != strconv.Itoa(len(r.body)) {
		t.Errorf("headers %v", r.headers)
	}
	if st := r.headers["Server-Timing"]; !strings.Contains(st, `verity;desc="gateway"`) || !strings.Contains(st, `node;desc="gateway"`) {
		t.Errorf("Server-Timing %q", st)
	}
	// A small file verified whole hands its bytes to the script too.
	if !bytes.Equal(r.verityBody, r.body) {
		t.Errorf("verityBody %q, want the body %q", r.verityBody, r.body)
	}

	r = serve(t, w, origin+"/big.bin", nil)
	if r.status != 200 || len(r.body) != n.big || r.err != nil {
		t.Fatalf("big.bin: %d, %d bytes, %v", r.status, len(r.body), r.err)
	}
	for i, c := range r.body {
		if c != byte(i*7+i/1000) {
			t.Fatalf("big.bin: byte %d differs", i)
		}
	}

	r = serve(t, w, origin+"/big.bin", map[string]any{"Range": "bytes=1000-2999"})
	if r.status != 206 || len(r.body) != 2000 || r.headers["Content-Range"] != "bytes 1000-2999/"+strconv.Itoa(n.big) || r.body[0] != byte(7001&0xff) {
		t.Fatalf("range: %d %v, %d bytes", r.status, r.headers, len(r.body))
	}

	r = serve(t, w, origin+"/docs", nil)
	if r.status != 301 || r.headers["Location"] != "/docs/" {
		t.Fatalf("/docs: %d %v", r.status, r.headers)
	}
	r = serve(t, w, origin+"/nope.txt", nil)
	if r.status != 404 {
		t.Fatalf("/nope.txt: %d", r.status)
	}

	// node.js has no WebTransport: that is the browser's limit, not the
	// node's fault, so the node is skipped (the next transport tries it)
	// and not reported. A report is recorded in the stats, during the
	// request, before it is posted: none recorded now that the requests
	// have ended means none posted.
	if reps := w.c.Stats().Reports(); len(reps) != 0 {
		t.Errorf("reports recorded %+v", reps)
	}
	n.mu.Lock()
	reports := append([]string(nil), n.reports...)
	n.mu.Unlock()
	if len(reports) != 0 {
		t.Errorf("reports %q", reports)
	}

	// Stats through the message port.
	got := message(t, w, "verity-stats")
	var stats struct {
		Requests []RequestRecord `json:"requests"`
	}
	if err := json.Unmarshal([]byte(got), &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats.Requests) != 5 || stats.Requests[1].Bytes != int64(n.big) || stats.Requests[1].Transport != "gateway" || stats.Requests[4].Status != 404 {
		t.Errorf("stats %s", got)
	}
	got = message(t, w, "verity-reports")
	if !strings.Contains(got, `"reports":[]`) {
		t.Errorf("reports message %s", got)
	}

	// A query does not change the file (the URL is split without a URL
	// object); the fragment is not the Request's.
	if q := serve(t, w, origin+"/?v=1#x", nil); q.status != 200 || string(q.body) != "<!doctype html><p>hello from verity</p>" {
		t.Fatalf("/?v=1: %d %q %v", q.status, q.body, q.err)
	}
	if q := serve(t, w, origin+"/big.bin", nil); len(q.verityBody) != 0 {
		t.Errorf("big.bin: a streamed body carries verityBody (%d bytes)", len(q.verityBody))
	}
}

func TestWorkerAllSourcesFail(t *testing.T) {
	n := installFakeNet(t)
	n.failCAR = true
	w := newTestWorker(t)
	r := serve(t, w, "http://demo.localhost:8080/index.html", nil)
	if r.status != 502 || !strings.HasPrefix(string(r.body), "502 Bad Gateway") {
		t.Fatalf("%d %q", r.status, r.body)
	}
}

// message posts {type} to the worker with a MessageChannel and returns the
// JSON of the reply.
func message(t *testing.T, w *Worker, typ string) string {
	t.Helper()
	ch := js.Global().Get("MessageChannel").New()
	got := make(chan string, 1)
	on := js.FuncOf(func(_ js.Value, args []js.Value) any {
		got <- jsJSON.Call("stringify", args[0].Get("data")).String()
		return nil
	})
	defer on.Release()
	ch.Get("port1").Set("onmessage", on)
	w.Message(js.ValueOf(map[string]any{"type": typ}), ch.Get("port2"))
	defer ch.Get("port1").Call("close")
	select {
	case s := <-got:
		return s
	case <-time.After(testutil.Scale(10 * time.Second)):
		t.Fatal("no reply")
		return ""
	}
}
