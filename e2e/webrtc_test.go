package e2e

import (
	"os"
	"os/exec"
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
	Status  int    `json:"status"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	Timing  string `json:"timing"`
	Removed bool   `json:"removed"`
	Error   string `json:"error"`
}

// The page that bridges WebRTC for the worker may go away at any time:
// here a second page (an iframe, the newest bridge, so the one in use) is
// removed as soon as the first bytes of a large asset arrive. The asset
// still arrives whole and byte-equal, and later requests go through the
// page that is left.
func TestWebRTCBridgingPageGoes(t *testing.T) {
	if inLoopbackNetns(t) {
		return
	}
	e := newEnv(t, envConfig{webrtcOnly: true, browserFlags: browser.WebRTCLoopbackFlags})
	e.controlled()
	big := largest(assets(e.files))

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

	res, err := browser.Call[bridgeGoneResult](e.ctx(60*time.Second), e.b, `async (path) => {
		let removed = false, error = '', n = 0;
		const chunks = [];
		const r = await fetch(path, {cache: 'no-store'});
		try {
			const rd = r.body.getReader();
			for (;;) {
				const {done, value} = await rd.read();
				if (done) break;
				chunks.push(value);
				n += value.length;
				if (!removed) { removed = true; document.getElementById('bridge').remove(); }
			}
		} catch (e) { error = String(e); }
		const buf = new Uint8Array(n);
		let o = 0;
		for (const c of chunks) { buf.set(c, o); o += c.length; }
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
		const sha256 = Array.from(d, x => x.toString(16).padStart(2, '0')).join('');
		return {status: r.status, size: n, sha256, timing: r.headers.get('server-timing') || '', removed, error};
	}`, "/"+big.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/%s: Server-Timing %s", big.Path, res.Timing)
	if res.Status != 200 || res.Error != "" || !res.Removed || res.Size != big.Size || res.SHA256 != big.SHA256 {
		t.Fatalf("/%s while its bridge went away: %+v; want %d bytes sha256 %s", big.Path, res, big.Size, big.SHA256)
	}

	ids := e.nodeIDs()
	for _, f := range assets(e.files) {
		r := e.fetchFile(f)
		tr, _ := r.Timing("verity")
		n, _ := r.Timing("node")
		if tr != "webrtc" || !ids[n] {
			t.Errorf("/%s after the bridging page went: Server-Timing %q, want verity=webrtc", f.Path, r.Headers["server-timing"])
		}
	}
}
