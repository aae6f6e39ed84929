package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"

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
