//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/wasmclient"
)

const mib = 1 << 20

var (
	siteOnce sync.Once
	theSite  *site
)

// demoSite is shared by the tests: it is only read.
func demoSite(t testing.TB) *site {
	siteOnce.Do(func() {
		theSite = buildSite(t,
			fileSpec{"index.html", []byte("<!doctype html><title>demo</title><script src=/verity.js async></script>")},
			fileSpec{"style.css", []byte("body{color:red}")},
			fileSpec{"big.bin", randomBytes(3*mib+12345, 1)},
			fileSpec{"docs/index.html", []byte("<p>docs</p>")},
			fileSpec{"docs/a b.txt", []byte("spaced name")},
			fileSpec{"empty.txt", nil},
		)
	})
	return theSite
}

type result struct {
	resp *wasmclient.Response
	body []byte
	err  error // from Read
}

func get(t *testing.T, c *wasmclient.Client, req wasmclient.FetchRequest) (result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.Fetch(ctx, req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return result{resp: resp, body: b, err: rerr}, nil
}

func mustGet(t *testing.T, c *wasmclient.Client, req wasmclient.FetchRequest) result {
	t.Helper()
	r, err := get(t, c, req)
	if err != nil {
		t.Fatalf("Fetch %s: %v", req.Path, err)
	}
	return r
}

func header(r *wasmclient.Response, name string) string {
	for _, kv := range r.Header() {
		if strings.EqualFold(kv[0], name) {
			return kv[1]
		}
	}
	return ""
}

func TestFetchFromNode(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, nil)
	for _, tc := range []struct {
		path, file, ctype string
	}{
		{"/", "index.html", "text/html; charset=utf-8"},
		{"/index.html", "index.html", "text/html; charset=utf-8"},
		{"/style.css", "style.css", "text/css; charset=utf-8"},
		{"/big.bin", "big.bin", "application/octet-stream"},
		{"/docs/", "docs/index.html", "text/html; charset=utf-8"},
		{"/docs/a%20b.txt", "docs/a b.txt", "text/plain; charset=utf-8"},
		{"/empty.txt", "empty.txt", "text/plain; charset=utf-8"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: tc.path})
			if r.err != nil {
				t.Fatalf("read: %v", r.err)
			}
			want := s.files[tc.file]
			if r.resp.Status != 200 || !bytes.Equal(r.body, want) {
				t.Fatalf("status %d, %d bytes; want 200, %d bytes", r.resp.Status, len(r.body), len(want))
			}
			if got := header(r.resp, "Content-Type"); got != tc.ctype {
				t.Errorf("Content-Type %q, want %q", got, tc.ctype)
			}
			if got, want := r.resp.ContentLength, int64(len(want)); got != want {
				t.Errorf("Content-Length %d, want %d", got, want)
			}
			if !strings.HasPrefix(r.resp.ETag, `"b`) || header(r.resp, "Accept-Ranges") != "bytes" {
				t.Errorf("ETag %q, Accept-Ranges %q", r.resp.ETag, header(r.resp, "Accept-Ranges"))
			}
			st := header(r.resp, "Server-Timing")
			if !strings.Contains(st, `verity;desc="webtransport"`) || !strings.Contains(st, `node;desc="na"`) || !strings.Contains(st, "ttfb;dur=") {
				t.Errorf("Server-Timing %q", st)
			}
		})
	}
	if fb, _, reps := e.gw.counts(); fb != 0 || len(reps) != 0 {
		t.Errorf("fallback requests %d, reports %v; want none", fb, reps)
	}
	recs := e.client.Stats().Requests()
	if len(recs) != 7 {
		t.Fatalf("%d request records, want 7", len(recs))
	}
	last := recs[len(recs)-1]
	if last.Transport != "webtransport" || last.Node != "na" || last.Status != 200 || last.Error != "" {
		t.Errorf("last record %+v", last)
	}
	big := recs[3]
	if big.Bytes != int64(len(s.files["big.bin"])) || big.Blocks < 14 {
		t.Errorf("big.bin record %+v", big)
	}
}

func TestDirectoryRedirect(t *testing.T) {
	e := newEnv(t, demoSite(t), 1, nil)
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/docs", Query: "x=1"})
	if r.resp.Status != 301 || r.resp.Location != "/docs/?x=1" || len(r.body) != 0 {
		t.Fatalf("status %d, Location %q", r.resp.Status, r.resp.Location)
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, demoSite(t), 2, nil)
	for _, p := range []string{"/nope.html", "/docs/nope/", "/style.css/x"} {
		_, err := get(t, e.client, wasmclient.FetchRequest{Path: p})
		if !errors.Is(err, wasmclient.ErrNotFound) || wasmclient.HTTPStatus(err) != 404 {
			t.Errorf("%s: err %v, want ErrNotFound", p, err)
		}
	}
	if _, _, reps := e.gw.counts(); len(reps) != 0 {
		t.Errorf("reports %v for missing paths, want none", reps)
	}
	if _, err := get(t, e.client, wasmclient.FetchRequest{Path: "/a/../index.html"}); !errors.Is(err, wasmclient.ErrBadPath) {
		t.Errorf("dot-dot: err %v, want ErrBadPath", err)
	}
}

func TestFailoverMidStream(t *testing.T) {
	s := demoSite(t)
	for _, tc := range []struct {
		name   string
		fault  func(carLen int64) fault
		reason string
	}{
		{"bad block", func(n int64) fault { return fault{corruptAt: n / 2} }, wasmclient.ReasonBadBlock},
		{"truncated", func(n int64) fault { return fault{truncateAt: n / 2} }, wasmclient.ReasonProtocol},
		{"stalled", func(n int64) fault { return fault{hangAt: n / 2} }, wasmclient.ReasonTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.IdleTimeout = 300 * time.Millisecond })
			e.nodes[0].setFault(tc.fault(e.carLen(t, "big.bin")))
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
			if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
				t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
			}
			// The second node was asked only for the bytes not yet sent.
			tg := e.nodes[1].targets()
			if len(tg) != 1 || !strings.Contains(tg[0], "entity-bytes=") {
				t.Fatalf("second node targets %q, want one resumed range", tg)
			}
			rec := e.client.Stats().Requests()[0]
			if rec.Node != "nb" || rec.Failovers != 1 || rec.Error != "" {
				t.Errorf("record %+v", rec)
			}
			reps := e.client.Stats().Reports()
			if len(reps) != 1 || reps[0].Node != "na" || reps[0].Reason != tc.reason {
				t.Fatalf("reports %+v, want one %s for na", reps, tc.reason)
			}
			waitReports(t, e.gw, 1)
			// The failed node is dropped: the next request goes to nb directly.
			e.nodes[0].setFault(fault{})
			before := len(e.nodes[0].targets())
			r = mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
			if r.resp.Node != "nb" || len(e.nodes[0].targets()) != before {
				t.Errorf("after drop: served by %s, na saw %d new requests", r.resp.Node, len(e.nodes[0].targets())-before)
			}
		})
	}
}

func waitReports(t *testing.T, g *gatewayServer, n int) {
	t.Helper()
	testutil.EventuallyErr(t, 10*time.Second, fmt.Sprintf("%d reports at the gateway", n), func() error {
		if _, _, reps := g.counts(); len(reps) < n {
			return fmt.Errorf("gateway got %d reports", len(reps))
		}
		return nil
	})
}

func TestFallbackToGateway(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, nil)
	n := e.carLen(t, "big.bin")
	e.nodes[0].setFault(fault{corruptAt: n / 3})
	e.nodes[1].setFault(fault{truncateAt: 2 * n / 3})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
		t.Fatalf("read err %v, %d bytes", r.err, len(r.body))
	}
	rec := e.client.Stats().Requests()[0]
	if rec.Transport != "gateway" || rec.Node != "gateway" || rec.Failovers != 2 {
		t.Errorf("record %+v", rec)
	}
	waitReports(t, e.gw, 2)
}

func TestUnreachableAndStatus(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 3, nil)
	e.nodes[0].close() // connection refused
	e.nodes[1].setFault(fault{status: 503})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/index.html"})
	if r.err != nil || r.resp.Node != "nc" || !bytes.Equal(r.body, s.files["index.html"]) {
		t.Fatalf("node %s, err %v", r.resp.Node, r.err)
	}
	reps := e.client.Stats().Reports()
	if len(reps) != 2 || reps[0].Reason != wasmclient.ReasonUnreachable || reps[1].Reason != wasmclient.ReasonProtocol {
		t.Fatalf("reports %+v", reps)
	}
}

func TestNodeWithout404IsNotReported(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, nil)
	e.nodes[0].setFault(fault{status: 404})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if r.resp.Node != "nb" {
		t.Fatalf("served by %s, want nb", r.resp.Node)
	}
	if reps := e.client.Stats().Reports(); len(reps) != 0 {
		t.Fatalf("reports %+v, want none", reps)
	}
}

func TestAllSourcesFail(t *testing.T) {
	s := demoSite(t)
	t.Run("before headers", func(t *testing.T) {
		e := newEnv(t, s, 1, nil)
		e.nodes[0].setFault(fault{status: 500})
		e.gw.setFault(fault{status: 502})
		_, err := get(t, e.client, wasmclient.FetchRequest{Path: "/index.html"})
		var fe *wasmclient.FetchError
		if !errors.As(err, &fe) || !errors.Is(err, wasmclient.ErrNoSource) || len(fe.Attempts) != 2 || wasmclient.HTTPStatus(err) != 502 {
			t.Fatalf("err %v", err)
		}
		resp := wasmclient.ErrorResponse(err)
		b, _ := io.ReadAll(resp.Body)
		if resp.Status != 502 || !strings.HasPrefix(string(b), "502 Bad Gateway") {
			t.Errorf("error response %d %q", resp.Status, b)
		}
	})
	t.Run("mid stream", func(t *testing.T) {
		e := newEnv(t, s, 2, nil)
		n := e.carLen(t, "big.bin")
		e.nodes[0].setFault(fault{corruptAt: n / 2})
		e.nodes[1].setFault(fault{status: 500})
		e.gw.setFault(fault{truncateAt: 1000})
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
		if r.err == nil || !errors.Is(r.err, wasmclient.ErrNoSource) {
			t.Fatalf("read err %v after %d bytes; want ErrNoSource", r.err, len(r.body))
		}
		if int64(len(r.body)) >= r.resp.ContentLength || !bytes.Equal(r.body, s.files["big.bin"][:len(r.body)]) {
			t.Fatalf("%d bytes delivered of %d; must be a correct prefix", len(r.body), r.resp.ContentLength)
		}
		rec := e.client.Stats().Requests()[0]
		if rec.Error == "" {
			t.Errorf("record %+v has no error", rec)
		}
	})
}

// TestRange: single ranges are answered 206 with exactly their bytes,
// fetched as entity-bytes so only the blocks covering them travel; the
// rules are webfile's (unsatisfiable → 416, multi-range and malformed →
// 200 full body, If-Range by strong ETag only).
func TestRange(t *testing.T) {
	s := demoSite(t)
	big := s.files["big.bin"]
	size := int64(len(big))
	full := mustGet(t, newEnv(t, s, 1, nil).client, wasmclient.FetchRequest{Path: "/big.bin"})
	etag := full.resp.ETag
	for _, tc := range []struct {
		name, header, ifRange string
		status                int
		from, to              int64 // the bytes of a 206
	}{
		{"start", "bytes=0-99", "", 206, 0, 99},
		{"middle spanning blocks", "bytes=200000-600000", "", 206, 200000, 600000},
		{"block boundary", "bytes=262144-262144", "", 206, 262144, 262144},
		{"last byte", "bytes=" + itoa(size-1) + "-" + itoa(size-1), "", 206, size - 1, size - 1},
		{"suffix", "bytes=-1000", "", 206, size - 1000, size - 1},
		{"suffix longer than file", "bytes=-" + itoa(size+5), "", 206, 0, size - 1},
		{"open-ended", "bytes=" + itoa(size-300000) + "-", "", 206, size - 300000, size - 1},
		{"end past size", "bytes=10-" + itoa(size+100), "", 206, 10, size - 1},
		{"if-range match", "bytes=0-99", etag, 206, 0, 99},
		{"unsatisfiable", "bytes=" + itoa(size) + "-", "", 416, 0, 0},
		{"unsatisfiable far", "bytes=" + itoa(size+1<<20) + "-" + itoa(size+2<<20), "", 416, 0, 0},
		{"suffix zero", "bytes=-0", "", 416, 0, 0},
		{"multi-range", "bytes=0-1,5-6", "", 200, 0, 0},
		{"malformed", "bytes=9-3", "", 200, 0, 0},
		{"other unit", "items=0-1", "", 200, 0, 0},
		{"if-range mismatch", "bytes=0-99", `"bafkreiother"`, 200, 0, 0},
		{"if-range weak", "bytes=0-99", "W/" + etag, 200, 0, 0},
		{"if-range date", "bytes=0-99", "Sat, 21 Nov 2026 20:00:00 GMT", 200, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 1, nil)
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: tc.header, IfRange: tc.ifRange})
			if r.err != nil || r.resp.Status != tc.status {
				t.Fatalf("status %d, err %v; want %d", r.resp.Status, r.err, tc.status)
			}
			if header(r.resp, "Accept-Ranges") != "bytes" && tc.status != 416 {
				t.Errorf("Accept-Ranges %q", header(r.resp, "Accept-Ranges"))
			}
			switch tc.status {
			case 206:
				want := "bytes " + itoa(tc.from) + "-" + itoa(tc.to) + "/" + itoa(size)
				if !bytes.Equal(r.body, big[tc.from:tc.to+1]) || r.resp.ContentRange != want ||
					r.resp.ContentLength != tc.to-tc.from+1 || r.resp.ETag != etag {
					t.Fatalf("%d bytes, Content-Range %q, length %d, ETag %q; want %s", len(r.body), r.resp.ContentRange, r.resp.ContentLength, r.resp.ETag, want)
				}
				// Only the blocks covering the range were asked for and sent.
				tg := e.nodes[0].targets()
				if len(tg) != 1 || !strings.Contains(tg[0], "&entity-bytes=") {
					t.Fatalf("node targets %q", tg)
				}
				_, car := s.car(tg[0])
				leaves := (tc.to/262144 - tc.from/262144) + 1
				if leaves < (size-1)/262144+1 && int64(len(car)) >= e.carLen(t, "big.bin") {
					t.Errorf("range CAR of %d bytes is not smaller than the whole file's", len(car))
				}
				if rec := e.client.Stats().Requests(); len(rec) != 1 || rec[0].Blocks > leaves+2 {
					t.Errorf("records %+v: want at most %d blocks (leaves + file root + site root)", rec, leaves+2)
				}
			case 416:
				if r.resp.ContentRange != "bytes */"+itoa(size) || len(r.body) != 0 || r.resp.ContentLength != 0 {
					t.Fatalf("Content-Range %q, %d bytes", r.resp.ContentRange, len(r.body))
				}
				if rec := e.client.Stats().Requests(); len(rec) != 1 || rec[0].Blocks > 2 {
					t.Errorf("records %+v: an unsatisfiable range needs only the roots", rec)
				}
			case 200:
				if !bytes.Equal(r.body, big) || r.resp.ContentRange != "" || r.resp.ContentLength != size {
					t.Fatalf("%d bytes, Content-Range %q", len(r.body), r.resp.ContentRange)
				}
			}
		})
	}
	t.Run("empty file", func(t *testing.T) {
		e := newEnv(t, s, 1, nil)
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/empty.txt", Range: "bytes=0-"})
		if r.resp.Status != 416 || r.resp.ContentRange != "bytes */0" {
			t.Fatalf("status %d, Content-Range %q", r.resp.Status, r.resp.ContentRange)
		}
	})
	t.Run("resume", func(t *testing.T) {
		e := newEnv(t, s, 2, nil)
		target := "/ipfs/" + s.root.String() + "/big.bin?format=car&dag-scope=entity&entity-bytes=100000:" + itoa(2*mib+5)
		_, car := s.car(target)
		e.nodes[0].setFault(fault{corruptAt: int64(len(car)) * 3 / 4})
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=100000-" + itoa(2*mib+5)})
		if r.err != nil || r.resp.Status != 206 || !bytes.Equal(r.body, big[100000:2*mib+6]) {
			t.Fatalf("err %v, %d bytes", r.err, len(r.body))
		}
		if tg := e.nodes[1].targets(); len(tg) != 1 || !strings.HasSuffix(tg[0], ":"+itoa(2*mib+5)) {
			t.Fatalf("resumed targets %q", tg)
		}
	})
}

// TestRangeBadNode: a node that answers a range with blocks for another
// range, or with the right blocks out of order, is rejected, reported, and
// the response completes from another node with exactly the range's bytes.
func TestRangeBadNode(t *testing.T) {
	s := demoSite(t)
	big := s.files["big.bin"]
	const header, from, to = "bytes=600000-1400000", 600000, 1400000
	for _, tc := range []struct {
		name  string
		fault fault
	}{
		{"another range", fault{retarget: func(tg string) string {
			return strings.Replace(tg, "entity-bytes=600000:1400000", "entity-bytes=0:800000", 1)
		}}},
		{"earlier start", fault{retarget: func(tg string) string {
			return strings.Replace(tg, "entity-bytes=600000:", "entity-bytes=300000:", 1)
		}}},
		{"whole file", fault{retarget: func(tg string) string {
			return strings.Replace(tg, "&entity-bytes=600000:1400000", "", 1)
		}}},
		{"out of order", fault{swapLast: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, nil)
			e.nodes[0].setFault(tc.fault)
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: header})
			if r.err != nil || r.resp.Status != 206 || !bytes.Equal(r.body, big[from:to+1]) {
				t.Fatalf("status %d, err %v, %d bytes", r.resp.Status, r.err, len(r.body))
			}
			if len(e.nodes[1].targets()) == 0 {
				t.Fatal("the second node was never asked")
			}
			reps := e.client.Stats().Reports()
			if len(reps) == 0 || reps[0].Node != e.nodes[0].id {
				t.Fatalf("reports %+v; want one against %s", reps, e.nodes[0].id)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestIfNoneMatch(t *testing.T) {
	e := newEnv(t, demoSite(t), 1, nil)
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	r2 := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css", IfNoneMatch: r.resp.ETag})
	if r2.resp.Status != 304 || len(r2.body) != 0 || r2.resp.ETag != r.resp.ETag {
		t.Fatalf("status %d, etag %q", r2.resp.Status, r2.resp.ETag)
	}
}

func TestSessionRefresh(t *testing.T) {
	s1 := demoSite(t)
	clock := testutil.NewClock(time.Unix(1e9, 0))
	e := newEnv(t, s1, 1, func(c *wasmclient.Config) { c.Now = clock.Now })
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if string(r.body) != "body{color:red}" {
		t.Fatalf("body %q", r.body)
	}
	s2 := buildSite(t, fileSpec{"style.css", []byte("body{color:blue}")})
	e.gw.setSite(s2)
	sess, err := e.client.Session(context.Background()) // still the cached one
	if err != nil || sess.Root != s1.root.String() {
		t.Fatalf("session within the ttl: root %v, err %v; want the first root", sess, err)
	}
	if _, sessions, _ := e.gw.counts(); sessions != 1 {
		t.Fatalf("%d session loads within the ttl, want 1", sessions)
	}
	// Past the ttl, a request goes on with the session held while it
	// reloads in the background (an earlier root stays on its nodes for
	// the collector's grace period); the requests after the reload get
	// the new root.
	clock.Add(31 * time.Second)
	r = mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if string(r.body) != "body{color:red}" {
		t.Fatalf("just past the ttl: body %q, want the held root's", r.body)
	}
	e.nodes[0].site = s2
	testutil.Eventually(t, 10*time.Second, "the reloaded session's root in use", func() bool {
		sess, err := e.client.Session(context.Background())
		return err == nil && sess.Root == s2.root.String()
	})
	r = mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if string(r.body) != "body{color:blue}" {
		t.Fatalf("after the reload: body %q, want the new root's", r.body)
	}
	// Long past the ttl, a request waits for the reload.
	s3 := buildSite(t, fileSpec{"style.css", []byte("body{color:green}")})
	e.gw.setSite(s3)
	e.nodes[0].site = s3
	clock.Add(10 * time.Minute)
	r = mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if string(r.body) != "body{color:green}" {
		t.Fatalf("10 minutes past the ttl: body %q, want the new root's", r.body)
	}
}

func TestDropExpires(t *testing.T) {
	s := demoSite(t)
	clock := testutil.NewClock(time.Unix(1e9, 0))
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.Now = clock.Now; c.DropFor = time.Minute; c.SessionTTL = time.Hour })
	e.nodes[0].setFault(fault{status: 500})
	if r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"}); r.resp.Node != "nb" {
		t.Fatalf("served by %s", r.resp.Node)
	}
	e.nodes[0].setFault(fault{})
	if r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"}); r.resp.Node != "nb" {
		t.Fatalf("dropped node used: served by %s", r.resp.Node)
	}
	clock.Add(2 * time.Minute)
	if r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"}); r.resp.Node != "na" {
		t.Fatalf("after the drop: served by %s, want na", r.resp.Node)
	}
}

func TestCloseBodyEarly(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 1, nil)
	resp, err := e.client.Fetch(context.Background(), wasmclient.FetchRequest{Path: "/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(buf); !errors.Is(err, wasmclient.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if reps := e.client.Stats().Reports(); len(reps) != 0 {
		t.Fatalf("reports after a cancelled body: %+v", reps)
	}
}

// A page that stops reading for a while (backpressure) does not make the
// source look stalled.
func TestSlowReaderIsNotATimeout(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.IdleTimeout = 500 * time.Millisecond })
	resp, err := e.client.Fetch(context.Background(), wasmclient.FetchRequest{Path: "/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	time.Sleep(1500 * time.Millisecond) // deliberately: a page that reads nothing for 3 IdleTimeouts
	head := make([]byte, 300000)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // and again mid-body
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(head, rest...), s.files["big.bin"]) {
		t.Fatalf("err %v, %d bytes", err, len(head)+len(rest))
	}
	if reps := e.client.Stats().Reports(); len(reps) != 0 {
		t.Fatalf("reports %+v, want none", reps)
	}
}

// TestRangeHugeLastPos: a Range whose last-pos is past any end (RFC 9110
// allows it; parsed, it saturates at 2^63-1) is answered 206 with the
// bytes to the end, from the first node, and no honest node is reported
// for it. As entity-bytes to 2^63-1 it overflowed the verifier's (and a
// node's) 1+to-from: every node failed, or was blamed for a bad block.
func TestRangeHugeLastPos(t *testing.T) {
	s := demoSite(t)
	big := s.files["big.bin"]
	for _, tc := range []struct {
		name, header string
		from         int64
	}{
		{"from 0", "bytes=0-99999999999999999999", 0},
		{"from 1", "bytes=1-99999999999999999999", 1},
		{"from 1 max int64", "bytes=1-9223372036854775807", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, nil)
			r, err := get(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: tc.header})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			if r.err != nil || r.resp.Status != 206 || !bytes.Equal(r.body, big[tc.from:]) {
				t.Errorf("status %d, read error %v, %d bytes; want 206 with %d bytes", r.resp.Status, r.err, len(r.body), len(big)-int(tc.from))
			}
			if reps := e.client.Stats().Reports(); len(reps) != 0 {
				t.Errorf("honest nodes reported: %+v", reps)
			}
		})
	}
}

// A node that takes the request and answers nothing (overloaded, or
// hostile) does not hold the request for OpenTimeout: once it has said
// nothing for QuietTimeout it is given up and the next source asked.
// It is not reported (slow is not wrong) but ranks behind the other node
// afterwards.
func TestSilentNodeIsGivenUp(t *testing.T) {
	s := demoSite(t)
	// OpenTimeout inside get's 30 s, so the old wait would end in a
	// success that takes too long; QuietTimeout scaled so that a loaded
	// machine's nb answers within it.
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.OpenTimeout, c.QuietTimeout = 25*time.Second, testutil.Scale(time.Second)
	})
	e.nodes[0].setFault(fault{silent: true})
	start := time.Now()
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
	took := time.Since(start)
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
		t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
	}
	if r.resp.Node != "nb" {
		t.Fatalf("served by %q, want nb", r.resp.Node)
	}
	if took > 15*time.Second {
		t.Fatalf("took %v: the request waited for the silent node's OpenTimeout", took)
	}
	if len(e.nodes[0].targets()) != 1 {
		t.Fatalf("na asked %d times, want once", len(e.nodes[0].targets()))
	}
	// The silent node now ranks behind: the next request goes to nb first.
	requireSetAsideUnreported(t, e)
}

// requireSetAsideUnreported checks that node na, given up for being slow,
// was not reported (slow is not wrong), and that the next request is
// served by nb without asking na again.
func requireSetAsideUnreported(t *testing.T, e *env) {
	t.Helper()
	if reps := e.client.Stats().Reports(); len(reps) != 0 {
		t.Fatalf("reports %+v, want none: a slow node is not a failed one", reps)
	}
	asked := len(e.nodes[0].targets())
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if r.resp.Node != "nb" || len(e.nodes[0].targets()) != asked {
		t.Fatalf("next request served by %s, na asked %d times", r.resp.Node, len(e.nodes[0].targets())-asked)
	}
}

// The last source left is never given up for being slow: a node that
// answers after QuietTimeout, with no other node and no gateway to ask,
// serves the request.
func TestSlowLastSourceIsKept(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 1, func(c *wasmclient.Config) { c.Fallback, c.QuietTimeout = nil, 300*time.Millisecond })
	e.nodes[0].setFault(fault{delay: time.Second}) // past QuietTimeout
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if r.err != nil || string(r.body) != "body{color:red}" || r.resp.Node != "na" {
		t.Fatalf("err %v, body %q from %q", r.err, r.body, r.resp.Node)
	}
	if n := len(e.nodes[0].targets()); n != 1 {
		t.Fatalf("na asked %d times, want once", n)
	}
}

// A source given up for a late head is asked again, waiting this time,
// when every other source fails: giving up on a slow node never turns a
// request it would have served into a failure.
func TestQuietSourceAskedAgainLast(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.Fallback, c.QuietTimeout = nil, 200*time.Millisecond })
	e.nodes[0].setFault(fault{delay: 2 * time.Second}) // well past QuietTimeout
	e.nodes[1].setFault(fault{status: 500})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"})
	if r.err != nil || string(r.body) != "body{color:red}" || r.resp.Node != "na" {
		t.Fatalf("err %v, body %q from %q", r.err, r.body, r.resp.Node)
	}
	if n := len(e.nodes[0].targets()); n != 2 {
		t.Fatalf("na asked %d times, want twice (given up, then waited for)", n)
	}
}

// A node that answers and then trickles its body, each verified group
// well inside IdleTimeout, does not hold the page for as long as it
// likes: once it has run through its slack (QuietTimeout of the reader
// waiting, refilled by MinRate's worth of bytes), the body resumes from
// the next node at the first byte not delivered, not from the same node
// over its other transport (WebTransport and WebRTC in the browser). Not
// reported (slow is not wrong); but the next node delivering the rest
// many times faster shows the node, not the visitor's link, was slow: it
// is skipped and scored, so the next request asks the other node.
func TestTricklingNodeIsLeft(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.IdleTimeout, c.QuietTimeout = testutil.Scale(2*time.Second), testutil.Scale(500*time.Millisecond)
		webrtc := *c.Transports[0].(*wasmclient.FramedTransport)
		webrtc.TransportName = "webrtc"
		c.Transports = append(c.Transports, &webrtc)
	})
	e.nodes[0].setBao(true)
	// After the first 300 KiB, 1 KiB every 75 ms (about 13 KiB/s): a
	// verified 16 KiB group every 1.2 s, inside IdleTimeout; the rest of
	// the 3 MiB file would take about 4 minutes.
	e.nodes[0].setFault(fault{trickle: 1 << 10, trickleAt: 300 << 10, trickleEvery: 75 * time.Millisecond})
	requireSlowNodeLeft(t, e, s, testutil.Scale(15*time.Second))
}

// requireSlowNodeLeft fetches big.bin within bound and wants na, which
// served it slowly, left mid-body for nb, asked once and blamed: skipped
// and scored, not reported.
func requireSlowNodeLeft(t *testing.T, e *env, s *site, bound time.Duration) {
	t.Helper()
	start := time.Now()
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
	took := time.Since(start)
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
		t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
	}
	if took > bound {
		t.Fatalf("took %v: the slow node kept the body", took)
	}
	if n := len(e.nodes[0].targets()); n != 1 {
		t.Fatalf("na asked %d times, want once: not again over its other transport", n)
	}
	if tg := e.nodes[1].targets(); len(tg) != 1 || !strings.Contains(tg[0], "entity-bytes=") {
		t.Fatalf("second node targets %q, want one resumed range", tg)
	}
	if sc, _ := e.client.Scores().Get("na"); sc.Errors == 0 {
		t.Fatalf("na's score %+v: its slowness not scored", sc)
	}
	requireSetAsideUnreported(t, e)
}

// rankNaFirst gives the client a returning visitor's scores: na answers
// in 1 ms, nb in 5 ms, and nb was measured at nbRate bytes per second
// (0: not measured).
func rankNaFirst(e *env, nbRate int64) *wasmclient.Scores {
	sc := e.client.Scores()
	sc.ObserveOpen("na", time.Millisecond)
	sc.ObserveOpen("nb", 5*time.Millisecond)
	if nbRate > 0 {
		sc.ObserveTransfer("nb", nbRate, time.Second)
	}
	return sc
}

// trickle has node i answer bao16 and send its answers, after their
// first 8 KiB, 16 KiB every every.
func (e *env) trickle(i int, every time.Duration) {
	e.nodes[i].setBao(true)
	e.nodes[i].setFault(fault{trickle: 16 << 10, trickleAt: 8 << 10, trickleEvery: every})
}

// A node well above MinRate but far slower than another node the worker
// has measured is left mid-body, once, and blamed when the next node
// shows the link carries more: a node sending 16 KiB every 100 ms (160
// KiB/s, 2.5 times MinRate) held a 3 MiB body for about 18 s while the
// other node had delivered 4 MiB/s.
func TestNodeFarSlowerThanAnotherIsLeft(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.IdleTimeout, c.QuietTimeout = testutil.Scale(2*time.Second), testutil.Scale(500*time.Millisecond)
		c.Fallback = nil
	})
	sc := rankNaFirst(e, 4<<20)
	if got := nodeIDs(sc.Rank([]wasmclient.Node{{ID: "na"}, {ID: "nb"}})); got != "na,nb" {
		t.Fatalf("ranked %s, want na first", got)
	}
	e.nodes[0].setBao(true)
	e.nodes[0].setFault(fault{trickle: 16 << 10, trickleAt: 300 << 10, trickleEvery: 100 * time.Millisecond})
	requireSlowNodeLeft(t, e, s, testutil.Scale(8*time.Second))
}

// A node's rate over a body it served alone is measured, and ranks it:
// a node that answers first but delivers 320 KiB/s was asked first again
// and again, since only its time to the first bytes was scored.
func TestSlowBodyRanksNodeBehind(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.Fallback = nil })
	sc := rankNaFirst(e, 0)
	e.trickle(0, 50*time.Millisecond)
	rng := wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=0-524287"}
	r := mustGet(t, e.client, rng)
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"][:512<<10]) || r.resp.Node != "na" {
		t.Fatalf("read err %v, %d bytes from %s; want the range from na", r.err, len(r.body), r.resp.Node)
	}
	if na, _ := sc.Get("na"); na.Throughput <= 0 || na.Throughput > 1<<20 {
		t.Fatalf("na's throughput %.0f B/s, want its body's rate, about 320 KiB/s", na.Throughput)
	}
	if got := nodeIDs(sc.Rank([]wasmclient.Node{{ID: "na"}, {ID: "nb"}})); got != "nb,na" {
		t.Fatalf("ranked %s, want nb first", got)
	}
	r = mustGet(t, e.client, rng)
	if r.err != nil || r.resp.Node != "nb" || len(e.nodes[0].targets()) != 1 {
		t.Fatalf("next range from %s (err %v), na asked %d times; want nb", r.resp.Node, r.err, len(e.nodes[0].targets()))
	}
}

// A node's rate is measured from its entity on, not from the reader's
// first read: a range from a node delivering 160 KiB/s, read after the
// worker's thread was busy for 2.5 s, scored it at 100-490 MiB/s, and a
// 1 MiB/s node then counted as far slower than it.
func TestBodyRateCountsFromTheEntity(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.Fallback = nil })
	sc := rankNaFirst(e, 0)
	e.trickle(0, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=0-262143"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(b, s.files["big.bin"][:256<<10]) {
		t.Fatalf("read err %v, %d bytes; want the range", err, len(b))
	}
	if na, _ := sc.Get("na"); na.Throughput > 1<<20 {
		t.Fatalf("na scored %.0f B/s; it delivers 160 KiB/s", na.Throughput)
	}
}

// Throughput scores kept from another visit (the store) do not set the
// floor a source is left below: on a link slower than on the visit that
// measured nc at 4 MiB/s, every body from na or nb (200 KiB/s, the
// link's rate) was left mid-body, with nc never asked.
func TestStoredRateSetsNoFloor(t *testing.T) {
	s := demoSite(t)
	store := &memStore{doc: []byte("verity-scores 1\nnc 500000 4194304 0 1 1800000000000\n")}
	e := newEnv(t, s, 3, func(c *wasmclient.Config) {
		c.Fallback = nil
		c.QuietTimeout = testutil.Scale(500 * time.Millisecond)
		c.ScoreStore = store
	})
	sc := e.client.Scores()
	testutil.Eventually(t, 10*time.Second, "the stored scores to load", func() bool {
		x, ok := sc.Get("nc")
		return ok && x.Throughput > 0
	})
	rankNaFirst(e, 0)
	e.trickle(0, 80*time.Millisecond)
	e.trickle(1, 80*time.Millisecond)
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=0-1048575"})
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"][:1<<20]) {
		t.Fatalf("read err %v, %d bytes; want the range", r.err, len(r.body))
	}
	if rec := e.client.Stats().Requests()[0]; rec.Failovers > 0 {
		t.Fatalf("record %+v: a body over a link slow for every node left its node", rec)
	}
}

// A node left mid-body for its rate is asked again only after the sources
// whose heads were late, and a node asked again after its own late head is
// still left for its rate while another is left to ask: on a loaded
// machine the next node's head came after QuietTimeout, and the trickling
// node, asked again and waited for, held the body to its end.
func TestSlowSourceAskedAfterLateOnes(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.Fallback = nil
		c.IdleTimeout, c.QuietTimeout = testutil.Scale(2*time.Second), testutil.Scale(300*time.Millisecond)
	})
	e.nodes[0].setBao(true)
	e.nodes[0].setFault(fault{trickle: 1 << 10, trickleAt: 300 << 10, trickleEvery: 75 * time.Millisecond})
	e.nodes[1].setFault(fault{delay: testutil.Scale(time.Second)})
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
	if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
		t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
	}
	if len(e.nodes[1].targets()) == 0 {
		t.Fatal("nb never asked")
	}
}

// A visitor's slow link is not a slow node: when the next node, too,
// delivers less than 4 times MinRate (as it would over the same slow
// link), the body switches once and stays, and neither node is scored or
// skipped.
func TestSlowLinkSwitchesOnceAndBlamesNoNode(t *testing.T) {
	s := demoSite(t)
	for _, tc := range []struct {
		name   string
		second time.Duration // nb's time per 16 KiB
	}{
		{"both below MinRate", 400 * time.Millisecond},                // 40 KiB/s
		{"next above MinRate, under 4 times", 160 * time.Millisecond}, // 100 KiB/s
	} {
		t.Run(tc.name, func(t *testing.T) {
			// QuietTimeout not scaled: a loaded machine only slows the
			// trickles, which brings the switch sooner.
			e := newEnv(t, s, 2, func(c *wasmclient.Config) {
				c.IdleTimeout, c.QuietTimeout = testutil.Scale(2*time.Second), 500*time.Millisecond
				c.Fallback = nil
			})
			// na delivers 16 KiB every 400 ms (40 KiB/s, below MinRate),
			// as a slow link would.
			for i, every := range []time.Duration{400 * time.Millisecond, tc.second} {
				e.nodes[i].setBao(true)
				e.nodes[i].setFault(fault{trickle: 16 << 10, trickleAt: 8 << 10, trickleEvery: every})
			}
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=0-262143"})
			if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"][:256<<10]) {
				t.Fatalf("read err %v, %d bytes; want the range", r.err, len(r.body))
			}
			if n0, n1 := len(e.nodes[0].targets()), len(e.nodes[1].targets()); n0 != 1 || n1 != 1 {
				t.Fatalf("na asked %d times, nb %d: want one switch, then the link's rate kept", n0, n1)
			}
			for _, id := range []string{"na", "nb"} {
				if sc, _ := e.client.Scores().Get(id); sc.Errors != 0 {
					t.Fatalf("%s scored %+v: the link was slow, not the node", id, sc)
				}
			}
			if reps := e.client.Stats().Reports(); len(reps) != 0 {
				t.Fatalf("reports %+v, want none", reps)
			}
		})
	}
}
