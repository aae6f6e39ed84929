package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/quic-go/webtransport-go"
	"go.uber.org/goleak"

	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

const carAccept = "application/vnd.ipld.car; version=1; order=dfs; dups=y"

func TestConfigValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  node.Config
	}{
		{"no data dir", node.Config{}},
		{"validity too long", node.Config{DataDir: t.TempDir(), CertValidity: 15 * 24 * time.Hour}},
		{"rotate before too long", node.Config{DataDir: t.TempDir(), CertValidity: 24 * time.Hour, CertRotateBefore: 24 * time.Hour}},
		{"public host not an IP", node.Config{DataDir: t.TempDir(), PublicHost: "localhost"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := node.New(tc.cfg); !errors.Is(err, node.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	ctx := context.Background()
	f := buildFixture(t)
	dir := t.TempDir()

	n1, err := node.New(node.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	roots, err := n1.ImportCAR(ctx, bytes.NewReader(f.car))
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) != 1 || !roots[0].Equals(f.root) {
		t.Fatalf("roots %v, want %v", roots, f.root)
	}
	id, rec := n1.ID(), n1.Record()
	if err := n1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n1.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	st, err := os.Stat(dir + "/identity.key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("identity.key: %v %v", err, st)
	}

	n2 := newNode(t, node.Config{DataDir: dir})
	if n2.ID() != id {
		t.Fatalf("id changed: %s -> %s", id, n2.ID())
	}
	if !bytes.Equal(n2.Record().Record.CertHashes[0].SHA256, rec.Record.CertHashes[0].SHA256) {
		t.Fatal("certificate changed across restart")
	}
	for c := range f.blocks {
		ok, err := n2.Has(ctx, c)
		if err != nil || !ok {
			t.Fatalf("block %s lost: %v", c, err)
		}
	}
}

func TestImportCARRejectsBadBlock(t *testing.T) {
	ctx := context.Background()
	f := buildFixture(t)
	n := newNode(t, node.Config{})

	var order []cid.Cid
	var victim cid.Cid
	for c, data := range f.blocks {
		order = append(order, c)
		if len(data) > 1000 && !victim.Defined() {
			victim = c
		}
	}
	bad := map[cid.Cid][]byte{}
	for c, d := range f.blocks {
		bad[c] = d
	}
	tampered := append([]byte(nil), bad[victim]...)
	tampered[len(tampered)/2] ^= 0xff
	bad[victim] = tampered
	// Put the bad block last so that good ones come before it.
	for i, c := range order {
		if c.Equals(victim) {
			order = append(append(order[:i:i], order[i+1:]...), victim)
			break
		}
	}
	_, err := n.ImportCAR(ctx, bytes.NewReader(writeCARv1(f.root, order, bad)))
	if !errors.Is(err, node.ErrBadCAR) {
		t.Fatalf("err = %v, want ErrBadCAR", err)
	}
	for c := range f.blocks {
		if ok, _ := n.Has(ctx, c); ok {
			t.Fatalf("block %s stored from a rejected CAR", c)
		}
	}
	// Truncated and garbage CARs are rejected too.
	for _, in := range [][]byte{f.car[:len(f.car)-10], []byte("not a car"), nil} {
		if _, err := n.ImportCAR(ctx, bytes.NewReader(in)); !errors.Is(err, node.ErrBadCAR) {
			t.Fatalf("err = %v, want ErrBadCAR", err)
		}
	}
	entries, _ := os.ReadDir(n.DataDir() + "/tmp")
	if len(entries) != 0 {
		t.Fatalf("staging files left: %v", entries)
	}
}

func TestCorruptBlockRefused(t *testing.T) {
	ctx := context.Background()
	f, n := servedFixture(ctx, t)
	var leaf cid.Cid
	for c := range f.blocks {
		if c.Prefix().Codec == cid.Raw && len(f.blocks[c]) == 256<<10 {
			leaf = c
			break
		}
	}
	p, err := n.BlockPath(leaf)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("block file: %v", err)
	}
	data[0] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(n.HTTPURL() + "/ipfs/" + leaf.String() + "?format=raw")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == 200 || bytes.Contains(body, data[:64]) {
		t.Fatalf("status %d, %d bytes: a corrupt block must not be served", resp.StatusCode, len(body))
	}
	// Over a CAR request the stream fails instead of carrying the bad block.
	status, _, carBody := httpGet(t, n.HTTPURL()+"/ipfs/"+f.root.String()+"?format=car", "application/vnd.ipld.car; version=1; order=dfs; dups=y")
	if status == 200 && bytes.Contains(carBody, data[:64]) {
		t.Fatal("CAR stream carried the corrupt block")
	}
	_, _, metrics := httpGet(t, n.HTTPURL()+"/metrics", "")
	if !bytes.Contains(metrics, []byte("verity_node_corrupt_blocks_total 2")) {
		t.Fatalf("corrupt blocks not counted:\n%s", metrics)
	}
}

func httpGet(t *testing.T, url, accept string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

func TestHTTPAndWebTransportSameBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)

	rec := n.Record()
	if err := rec.Verify(time.Now()); err != nil {
		t.Fatalf("record: %v", err)
	}
	sess, closeSess, err := dialWT(ctx, n.WebTransportURL(), rec.Record.CertHashes[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()

	root := f.root.String()
	cases := []struct {
		target, accept string
		status         int
	}{
		{"/ipfs/" + root + "?format=car", "", 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", "", 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity&entity-bytes=300000:700000", "", 200},
		{"/ipfs/" + root + "/a.txt", carAccept, 200},
		{"/ipfs/" + root + "/big.bin?dag-scope=block", carAccept, 200},
		{"/ipfs/" + root + "?format=raw", "", 200},
		{"/ipfs/" + root + "/missing.txt?format=car", "", 200}, // proof of absence: the path blocks
		{"/ipfs/" + root + "/a.txt?format=raw", "", 406},       // raw is for whole blocks, not paths
		{"/ipfs/" + root + "?format=car&entity-bytes=x", "", 400},
		{"/ipfs/notacid?format=car", "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			hs, hh, hb := httpGet(t, n.HTTPURL()+tc.target, tc.accept)
			resp, wb, err := wtGet(ctx, sess, tc.target, tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			if hs != tc.status || resp.Status != tc.status {
				t.Fatalf("status http %d, webtransport %d, want %d (%s)", hs, resp.Status, tc.status, wb)
			}
			if tc.status != 200 {
				if len(wb) == 0 || len(wb) > wire.MaxErrorBody {
					t.Fatalf("error body of %d bytes", len(wb))
				}
				return
			}
			if !bytes.Equal(hb, wb) {
				t.Fatalf("bodies differ: http %d bytes, webtransport %d bytes", len(hb), len(wb))
			}
			if ct := resp.Header.Get("content-type"); ct != hh.Get("Content-Type") || ct == "" {
				t.Fatalf("content-type %q vs %q", ct, hh.Get("Content-Type"))
			}
			if resp.Header.Get("etag") != hh.Get("Etag") {
				t.Fatalf("etag %q vs %q", resp.Header.Get("etag"), hh.Get("Etag"))
			}
			if strings.Contains(tc.target, "format=car") && resp.Header.Get("x-ipfs-roots") == "" {
				t.Fatal("no x-ipfs-roots")
			}
		})
	}
}

func TestWebTransportBadRequests(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := newNode(t, node.Config{})
	runNode(t, n)
	sess := dialNode(ctx, t, n)

	for _, raw := range []string{
		"GET / HTTP/1.1\r\n\r\n",
		"VERITY/1 GET /ipfs/x y\r\n\r\n",
		"VERITY/2 GET /ipfs/x\r\n\r\n",
		"VERITY/1 GET /ipfs/x\r\nbad header\r\n\r\n",
	} {
		str, err := sess.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(str, raw); err != nil {
			t.Fatal(err)
		}
		str.Close()
		resp, body, err := readWireResponse(str)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		if resp.Status != 400 || len(body) == 0 {
			t.Fatalf("%q: status %d body %q", raw, resp.Status, body)
		}
	}
	// A well-formed request for missing content is a 404 frame.
	resp, _, err := wtGet(ctx, sess, "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw", "")
	if err != nil || resp.Status != 404 {
		t.Fatalf("missing block: %v %+v", err, resp)
	}
	// Streams serve content only: the node's other endpoints stay on HTTP.
	for _, target := range []string{node.WellKnownRecordPath, "/metrics", "/healthz", "/ipfs/../metrics", "/"} {
		resp, body, err := wtGet(ctx, sess, target, "")
		if err != nil || resp.Status != 404 || len(body) == 0 {
			t.Fatalf("%s over webtransport: %v %+v %q", target, err, resp, body)
		}
	}
}

func TestHTTPEndpoints(t *testing.T) {
	n := newNode(t, node.Config{})
	runNode(t, n)

	status, hdr, body := httpGet(t, n.HTTPURL()+"/healthz", "")
	var h struct {
		OK bool   `json:"ok"`
		ID string `json:"id"`
	}
	if status != 200 || json.Unmarshal(body, &h) != nil || !h.OK || h.ID != n.ID() {
		t.Fatalf("healthz: %d %s", status, body)
	}
	if hdr.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("no CORS header")
	}

	status, _, body = httpGet(t, n.HTTPURL()+node.WellKnownRecordPath, "")
	s, err := noderecord.Parse(body)
	if status != 200 || err != nil {
		t.Fatalf("record: %d %v", status, err)
	}
	if err := s.Verify(time.Now()); err != nil {
		t.Fatal(err)
	}
	r := s.Record
	if r.NodeID != n.ID() || r.HTTP != n.HTTPURL() || r.WebTransport != n.WebTransportURL() || len(r.CertHashes) != 2 {
		t.Fatalf("record content: %+v", r)
	}
	if !strings.HasPrefix(n.WebTransportURL(), "https://127.0.0.1:") || !strings.HasSuffix(n.WebTransportURL(), "/verity/v1") {
		t.Fatalf("webtransport url %s", n.WebTransportURL())
	}
	for _, ch := range r.CertHashes {
		if ch.NotAfter.Sub(ch.NotBefore) > node.MaxCertValidity {
			t.Fatalf("certificate valid for %v", ch.NotAfter.Sub(ch.NotBefore))
		}
	}

	// Preflight from any origin.
	req, _ := http.NewRequest("OPTIONS", n.HTTPURL()+"/ipfs/bafkqaaa", nil)
	req.Header.Set("Origin", "http://site.localhost:8080")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("preflight: %d", resp.StatusCode)
	}

	// Deserialized responses are not served.
	if status, _, _ := httpGet(t, n.HTTPURL()+"/ipfs/bafkqaaa", "text/html"); status != 406 {
		t.Fatalf("deserialized request: %d, want 406", status)
	}

	httpGet(t, n.HTTPURL()+"/ipfs/bafkqaaa?format=raw", "")
	status, _, body = httpGet(t, n.HTTPURL()+"/metrics", "")
	for _, name := range []string{"verity_node_requests_total", "verity_node_bytes_sent_total", "verity_node_blocks_stored",
		"verity_node_webtransport_sessions", "verity_node_cert_rotations_total", "verity_node_request_duration_seconds"} {
		if !strings.Contains(string(body), name) {
			t.Fatalf("metrics missing %s (status %d)", name, status)
		}
	}
}

func TestCertRotation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	n := newNode(t, node.Config{Now: now})
	runNode(t, n)

	before := n.Record()
	cur0, next0 := before.Record.CertHashes[0], before.Record.CertHashes[1]
	if !next0.NotBefore.After(cur0.NotBefore) || !next0.NotAfter.After(cur0.NotAfter) {
		t.Fatalf("next certificate does not follow current: %+v %+v", cur0, next0)
	}
	// The next certificate becomes valid before the current one is rotated out.
	if rotateAt := cur0.NotAfter.Add(-3 * 24 * time.Hour); next0.NotBefore.After(rotateAt) {
		t.Fatalf("next valid from %v, rotation at %v", next0.NotBefore, rotateAt)
	}

	clock.Add(int64(10 * 24 * time.Hour))
	if err := n.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := n.Record()
	if err := after.Verify(now()); err != nil {
		t.Fatal(err)
	}
	cur1, next1 := after.Record.CertHashes[0], after.Record.CertHashes[1]
	if !bytes.Equal(cur1.SHA256, next0.SHA256) {
		t.Fatal("rotation did not promote the next certificate")
	}
	if bytes.Equal(next1.SHA256, next0.SHA256) || bytes.Equal(next1.SHA256, cur0.SHA256) {
		t.Fatal("rotation did not make a new next certificate")
	}
	if !after.Record.Issued.After(before.Record.Issued) {
		t.Fatal("record not re-signed")
	}

	// New sessions get the new certificate.
	if _, closeSess, err := dialWT(ctx, n.WebTransportURL(), cur0.SHA256); err == nil {
		closeSess()
		t.Fatal("old certificate still served")
	}
	sess, closeSess, err := dialWT(ctx, n.WebTransportURL(), cur1.SHA256)
	if err != nil {
		t.Fatalf("dial with new certificate: %v", err)
	}
	defer closeSess()
	// The session serves: a request for an absent block gets its 404 frame.
	if resp, _, err := wtGet(ctx, sess, "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw", ""); err != nil || resp.Status != 404 {
		t.Fatalf("request after rotation: %v %+v", err, resp)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	f := buildFixture(t)
	dir := t.TempDir()

	// New + Close without Run.
	n, err := node.New(node.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// New + Run + traffic + Close.
	n, err = node.New(node.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	status, _, _ := httpGet(t, n.HTTPURL()+"/ipfs/"+f.root.String()+"?format=car", "")
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sess, closeSess, err := dialWT(dctx, n.WebTransportURL(), n.Record().Record.CertHashes[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _, err := wtGet(dctx, sess, "/ipfs/"+f.root.String()+"/big.bin?format=car", ""); err != nil || resp.Status != 200 {
		t.Fatalf("wt get: %v", err)
	}
	cancel()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	closeSess()
	http.DefaultClient.CloseIdleConnections()
	if err := n.Run(ctx); !errors.Is(err, node.ErrClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestWebTransportMidBodyFailureResets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	// Remove 256 KiB leaves of big.bin: the traversal fails after the
	// head and the first blocks were sent.
	removeFullLeaves(t, n, f, 2)
	sess := dialNode(ctx, t, n)
	resp, body, err := wtGet(ctx, sess, "/ipfs/"+f.root.String()+"/big.bin?format=car", "")
	if err == nil {
		t.Fatalf("stream ended cleanly (status %d, %d bytes)", resp.Status, len(body))
	}
	var se *webtransport.StreamError
	// The reset may overtake the head: QUIC drops unread data on a reset.
	if (resp != nil && resp.Status != 200) || !errors.As(err, &se) {
		t.Fatalf("want a reset after the head, got %+v, %v", resp, err)
	}
	if se.ErrorCode != wire.CodeInternal {
		t.Fatalf("reset code %d, want %d", se.ErrorCode, wire.CodeInternal)
	}
}
