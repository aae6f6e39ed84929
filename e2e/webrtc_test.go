package e2e

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/e2e/browser"
)

// netnsEnv marks a test binary re-run inside its own network namespace.
const netnsEnv = "VERITY_E2E_NETNS"

// inLoopbackNetns re-runs the calling test in a new network namespace that
// has only lo (unshare -n), so no ICE traffic can leave loopback, and
// reports whether it did: the caller then returns. When the namespace
// cannot be created the test runs here, and says so.
func inLoopbackNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv(netnsEnv) == "1" {
		return false
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Logf("cannot create a network namespace (%v): running in the host's namespace", err)
		return false
	}
	args := []string{"-n", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, os.Args[0],
		"-test.run", "^" + t.Name() + "$", "-test.count=1", "-test.timeout=5m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.CommandContext(t.Context(), "unshare", args...)
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	if testing.Verbose() || err != nil {
		t.Logf("in a network namespace with only lo:\n%s", out)
	}
	if err != nil {
		t.Fatalf("test in the network namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "PASS") {
		t.Fatalf("test in the network namespace did not pass:\n%s", out)
	}
	return true
}

// A node that offers only WebRTC (as behind NAT) serves every demo asset
// to a controlled page: the worker reaches it through the page's bridge,
// verifies the bytes, and Server-Timing says webrtc.
func TestAssetsOverWebRTC(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	for _, n := range e.session().Nodes {
		if n.WebTransport != "" {
			t.Fatalf("node %s offers WebTransport %s; want WebRTC only", n.ID, n.WebTransport)
		}
	}
	e.controlled()
	ids := e.nodeIDs()
	nodes0 := e.nodeMetrics()
	for _, f := range assets(e.files) {
		res := e.fetchFile(f)
		tr, _ := res.Timing("verity")
		n, _ := res.Timing("node")
		if tr != "webrtc" || !ids[n] {
			t.Errorf("/%s: Server-Timing %q, want verity=webrtc and a node id of %v", f.Path, res.Headers["server-timing"], ids)
		}
	}
	before := sumNodes(nodes0, "verity_node_requests_total", map[string]string{"transport": "webrtc"})
	after := sumNodes(e.nodeMetrics(), "verity_node_requests_total", map[string]string{"transport": "webrtc"})
	if after <= before {
		t.Fatalf("nodes served %v → %v requests over WebRTC", before, after)
	}
}

// bridgeGoneResult is what the page saw of a fetch during which the
// bridging page went away.
type bridgeGoneResult struct {
	Status    int    `json:"status"`
	Size      int64  `json:"size"`
	SHA256    string `json:"sha256"`
	Timing    string `json:"timing"`
	Removed   bool   `json:"removed"`
	Relayed   int64  `json:"relayed"`   // bytes the bridging page had posted to the worker when it went
	ReadFirst int64  `json:"readFirst"` // bytes the page had read then
	Failovers int    `json:"failovers"` // the worker's record of the request
	Error     string `json:"error"`
}

// bridgeFile is the large asset the WebRTC bridge tests add to the demo
// site: 64 blocks, so that when the first verified bytes reach the page
// most of it is still on its way, and larger than what a bridging page
// holds for a worker that grants no credit (8 MiB).
const (
	bridgeFile = "media/bridge-16m.bin"
	bridgeSize = 16 << 20
)

// siteWithBigFile writes the demo site plus bridgeFile to a new directory.
func siteWithBigFile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(demoDir)); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, bridgeSize)
	rng := rand.New(rand.NewChaCha8([32]byte{'b', 'r', 'i', 'd', 'g', 'e'}))
	for i := 0; i+8 <= len(data); i += 8 {
		binary.LittleEndian.PutUint64(data[i:], rng.Uint64())
	}
	p := filepath.Join(dir, filepath.FromSlash(bridgeFile))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// The page that bridges WebRTC for the worker may go away at any time:
// here a second page (an iframe, the newest bridge, so the one in use)
// bridges a 16 MiB asset and is removed as soon as the first verified
// bytes reach the page. The test records how many bytes the iframe had
// posted to the worker at that moment and requires fewer than the asset
// (the transfer provably still in flight over that bridge). The asset
// still arrives whole and byte-equal, the worker records a failover
// (another source finished it), and later requests go through the page
// that is left.
func TestWebRTCBridgingPageGoes(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{demoDir: siteWithBigFile(t), webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	e.controlled()
	var big siteFile
	for _, f := range e.files {
		if f.Path == bridgeFile {
			big = f
		}
	}

	ok, err := browser.Eval[bool](e.ctx(30*time.Second), e.b, `new Promise((resolve) => {
		const f = document.createElement('iframe');
		f.id = 'bridge';
		f.src = '/?bridge';
		f.onload = () => {
			const t0 = Date.now();
			(function wait() {
				if (f.contentWindow.navigator.serviceWorker.controller && f.contentWindow.verity) {
					setTimeout(() => resolve(true), 300);
				} else if (Date.now() - t0 > 10000) {
					resolve(false);
				} else {
					setTimeout(wait, 50);
				}
			})();
		};
		document.body.appendChild(f);
	})`)
	if err != nil || !ok {
		t.Fatalf("the iframe did not become a controlled page: %v", err)
	}

	res, err := browser.Call[bridgeGoneResult](e.ctx(90*time.Second), e.b, `async (path) => {
		let removed = false, error = '', n = 0, relayed = -1, readFirst = 0;
		const chunks = [];
		const r = await fetch(path, {cache: 'no-store'});
		try {
			const rd = r.body.getReader();
			for (;;) {
				const {done, value} = await rd.read();
				if (done) break;
				chunks.push(value);
				n += value.length;
				if (!removed) {
					const f = document.getElementById('bridge');
					relayed = f.contentWindow.verity.bridge.relayed;
					readFirst = n;
					f.remove();
					removed = true;
				}
			}
		} catch (e) { error = String(e); }
		const buf = new Uint8Array(n);
		let o = 0;
		for (const c of chunks) { buf.set(c, o); o += c.length; }
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
		const sha256 = Array.from(d, x => x.toString(16).padStart(2, '0')).join('');
		const stats = await verity.stats();
		const rec = (stats.requests || []).filter(q => q.url.endsWith(path)).pop() || {};
		return {status: r.status, size: n, sha256, timing: r.headers.get('server-timing') || '', removed,
			relayed, readFirst, failovers: rec.failovers || 0, error};
	}`, "/"+big.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/%s: the bridging page had relayed %d of %d bytes (page had read %d) when it went; %d failovers; Server-Timing %s",
		big.Path, res.Relayed, big.Size, res.ReadFirst, res.Failovers, res.Timing)
	if res.Status != 200 || res.Error != "" || !res.Removed || res.Size != big.Size || res.SHA256 != big.SHA256 {
		t.Fatalf("/%s while its bridge went away: %+v; want %d bytes sha256 %s", big.Path, res, big.Size, big.SHA256)
	}
	if res.Relayed <= 0 || res.Relayed >= big.Size {
		t.Fatalf("the bridging page had relayed %d bytes of %d when it went: want some, not all (the transfer in flight)", res.Relayed, big.Size)
	}
	if res.Failovers < 1 {
		t.Fatalf("the worker records %d failovers for /%s; want the response finished by another source", res.Failovers, big.Path)
	}

	ids := e.nodeIDs()
	for _, f := range assets(e.files) {
		if f.Path == bridgeFile {
			continue
		}
		r := e.fetchFile(f)
		tr, _ := r.Timing("verity")
		n, _ := r.Timing("node")
		if tr != "webrtc" || !ids[n] {
			t.Errorf("/%s after the bridging page went: Server-Timing %q, want verity=webrtc", f.Path, r.Headers["server-timing"])
		}
	}
}

// creditResult is what the page saw playing the worker's side of the
// bridge.
type creditResult struct {
	WithinCredit int64  `json:"withinCredit"` // bytes posted on a 64 KiB credit
	Total        int64  `json:"total"`        // after granting the rest
	EndA         string `json:"endA"`
	BytesB       int64  `json:"bytesB"` // bytes posted on no credit at all
	EndB         string `json:"endB"`
	MsgB         string `json:"msgB"`
}

// The bridge posts data to the worker only within the credit the worker
// granted (docs/protocol.md §3, the page → worker bridge), and holds at most 8 MiB for a worker
// that grants nothing before it fails the stream. The page plays the
// worker's side of the real bridge in verity.js against a real node.
func TestWebRTCBridgeCredit(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{demoDir: siteWithBigFile(t), webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	e.controlled()
	s := e.session()
	carOf := func(path string) string { return "/ipfs/" + s.Root + "/" + path + "?format=car&dag-scope=entity" }
	// The first stream asks for an asset whose CAR the page may hold
	// whole (under 8 MiB); the second for one it may not.
	var small siteFile
	for _, f := range assets(e.files) {
		if f.Path != bridgeFile && f.Size > small.Size && f.Size < 4<<20 {
			small = f
		}
	}
	res, err := browser.Call[creditResult](e.ctx(90*time.Second), e.b, `async (node, smallTarget, bigTarget) => {
		const h = verity.bridge.handlers['verity-rtc-stream'];
		const open = (credit, target) => {
			const ch = new MessageChannel();
			const st = {bytes: 0, end: null};
			ch.port1.onmessage = (ev) => {
				const m = ev.data || {};
				if (m.t === 'data') st.bytes += m.b.byteLength;
				else if (m.t !== 'ack' && !st.end) st.end = m;
			};
			h({type: 'verity-rtc-stream', node, url: '/.verity/v1/webrtc/' + node, credit}, null, [ch.port2]);
			const req = new TextEncoder().encode('VERITY/1 GET ' + target + '\r\n\r\n');
			ch.port1.postMessage({t: 'data', b: req.buffer}, [req.buffer]);
			return {port: ch.port1, st};
		};
		const until = (cond, ms) => new Promise((res) => {
			const t0 = Date.now();
			(function w() { if (cond() || Date.now() - t0 > ms) res(cond()); else setTimeout(w, 20); })();
		});
		const a = open(64 << 10, smallTarget);
		await until(() => a.st.bytes > 0, 20000);
		// The node sends on; the page must post no more than the credit.
		await new Promise((r) => setTimeout(r, 1000));
		const withinCredit = a.st.bytes;
		a.port.postMessage({t: 'credit', n: 64 << 20});
		await until(() => a.st.end !== null, 30000);
		const total = a.st.bytes, endA = a.st.end ? a.st.end.t : '';
		a.port.postMessage({t: 'close'});

		const b = open(0, bigTarget);
		await until(() => b.st.end !== null, 30000);
		b.port.postMessage({t: 'close'});
		return {withinCredit, total, endA, bytesB: b.st.bytes, endB: b.st.end ? b.st.end.t : '', msgB: b.st.end ? String(b.st.end.msg || '') : ''};
	}`, s.Nodes[0].ID, carOf(small.Path), carOf(bridgeFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.WithinCredit <= 0 || res.WithinCredit > 64<<10 {
		t.Errorf("on a 64 KiB credit the page posted %d bytes", res.WithinCredit)
	}
	if res.EndA != "end" || res.Total <= small.Size {
		t.Errorf("/%s after granting the rest: %d bytes, then %q; want the whole CAR (> %d bytes), then end", small.Path, res.Total, res.EndA, small.Size)
	}
	if res.BytesB != 0 || res.EndB != "error" || !strings.Contains(res.MsgB, "too slowly") {
		t.Errorf("with no credit: %d bytes posted, then %q %q; want none, then an error once 8 MiB are held", res.BytesB, res.EndB, res.MsgB)
	}
}

// spreadResult is what the page saw of two fetches of a large asset over
// WebRTC, the second losing one of its peer connections midway.
type spreadResult struct {
	Size1, Size2     int64
	SHA1, SHA2       string
	Timing1, Timing2 string
	Error            string
	PCs              int   // peer connections the page opened in the first fetch
	Carrying         int   // of them, those that carried a stream
	Killed           bool  // a connection was closed while carrying a stream
	Others           int   // connections carrying a stream when it was
	Grew             int   // of them, those that received more bytes after
	Lanes, Failovers int   // the worker's record of the second fetch
	Relayed          int64 // bytes the page had relayed when it closed one
}

// The page spreads a node's concurrent streams over several peer
// connections (each its own SCTP association and congestion window), and
// the worker fetches a large body from one WebRTC node over several
// streams at once. When one of those connections dies mid-stream, the
// others go on receiving, and the asset still arrives whole and verified.
func TestWebRTCStreamsSpreadOverPeers(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{demoDir: siteWithBigFile(t), nodes: 1, webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	e.controlled()
	var big siteFile
	for _, f := range e.files {
		if f.Path == bridgeFile {
			big = f
		}
	}
	res, err := browser.Call[spreadResult](e.ctx(120*time.Second), e.b, `async (path) => {
		// Peer connections opened from now on, with their data channels.
		const O = window.RTCPeerConnection;
		const pcs = [];
		window.RTCPeerConnection = class extends O {
			constructor(c) {
				super(c);
				const me = {pc: this, chans: []};
				pcs.push(me);
				const cd = this.createDataChannel.bind(this);
				this.createDataChannel = (l, o) => { const dc = cd(l, o); if (l === 'verity') me.chans.push(dc); return dc; };
			}
		};
		const received = async (pc) => {
			let n = 0;
			for (const s of (await pc.getStats()).values()) if (s.type === 'transport') n += s.bytesReceived || 0;
			return n;
		};
		const sha = async (chunks, n) => {
			const buf = new Uint8Array(n);
			let o = 0;
			for (const c of chunks) { buf.set(c, o); o += c.length; }
			const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
			return Array.from(d, x => x.toString(16).padStart(2, '0')).join('');
		};
		const out = {error: ''};
		const get = async (onChunk) => {
			const r = await fetch(path, {cache: 'no-store'});
			const rd = r.body.getReader();
			const chunks = [];
			let n = 0;
			for (;;) {
				const {done, value} = await rd.read();
				if (done) break;
				chunks.push(value);
				n += value.length;
				if (onChunk) await onChunk();
			}
			return {size: n, sha: await sha(chunks, n), timing: r.headers.get('server-timing') || ''};
		};
		try {
			const a = await get(null);
			out.size1 = a.size; out.sha1 = a.sha; out.timing1 = a.timing;
			out.pcs = pcs.length;
			out.carrying = pcs.filter(x => x.chans.length > 0).length;

			let others = [], before = [];
			out.killed = false;
			const b = await get(async () => {
				if (out.killed) return;
				const busy = pcs.filter(x => x.pc.connectionState === 'connected' && x.chans.some(c => c.readyState === 'open'));
				if (busy.length < 2) return;
				others = busy.slice(1);
				before = await Promise.all(others.map(x => received(x.pc)));
				out.relayed = verity.bridge.relayed;
				busy[0].pc.close();
				out.killed = true;
			});
			out.size2 = b.size; out.sha2 = b.sha; out.timing2 = b.timing;
			const after = await Promise.all(others.map(x => received(x.pc)));
			out.others = others.length;
			out.grew = after.filter((v, i) => v > before[i]).length;
		} catch (err) { out.error = String(err); }
		const stats = await verity.stats();
		const rec = (stats.requests || []).filter(q => q.url.endsWith(path)).pop() || {};
		out.lanes = rec.lanes || 0;
		out.failovers = rec.failovers || 0;
		return out;
	}`, "/"+big.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Error != "" || res.Size1 != big.Size || res.SHA1 != big.SHA256 || res.Size2 != big.Size || res.SHA2 != big.SHA256 {
		t.Fatalf("/%s: %+v; want %d bytes sha256 %s twice", big.Path, res, big.Size, big.SHA256)
	}
	if tr := res.Timing1; !strings.Contains(tr, "webrtc") {
		t.Fatalf("first fetch Server-Timing %q; want webrtc", tr)
	}
	if res.Carrying < 2 {
		t.Fatalf("the page opened %d peer connections to the node, %d of them carrying streams; want streams on at least 2", res.PCs, res.Carrying)
	}
	if !res.Killed || res.Others < 1 {
		t.Fatalf("no moment with two connections carrying streams during the second fetch: %+v", res)
	}
	if res.Grew < res.Others {
		t.Fatalf("after one connection closed, %d of the %d others received more bytes; want all", res.Grew, res.Others)
	}
	if res.Lanes < 2 {
		t.Fatalf("the worker fetched the second body over %d streams at once; want several", res.Lanes)
	}
}
