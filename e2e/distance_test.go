package e2e

import (
	"net"
	"net/url"
	"testing"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/netem"
)

// linkedNodeHost is the loopback address nodes publish when a test shapes
// the traffic to them: the nodes listen on 127.0.0.1, forwarders listen on
// this address with the same ports.
const linkedNodeHost = "127.0.0.3"

// linkNodes starts, for every node of d, a UDP forwarder shaping its
// WebTransport port with link (both directions) and a plain TCP forwarder
// for its HTTP port (the gateway's way to the node, not shaped). They stop
// when the test ends. d must publish linkedNodeHost and not run yet.
func linkNodes(t *testing.T, d *devnet.Devnet, link netem.Link) {
	t.Helper()
	for _, n := range d.Nodes() {
		if u := n.WebTransportURL(); u != "" {
			port := urlPort(t, u)
			p, err := netem.NewUDP(netem.Config{
				Listen: net.JoinHostPort(linkedNodeHost, port),
				Target: net.JoinHostPort("127.0.0.1", port),
				Up:     link, Down: link,
			})
			if err != nil {
				t.Fatalf("node %s WebTransport forwarder: %v", n.ID(), err)
			}
			t.Cleanup(func() { p.Close() })
		}
		port := urlPort(t, n.HTTPURL())
		p, err := netem.NewTCP(netem.Config{
			Listen: net.JoinHostPort(linkedNodeHost, port),
			Target: net.JoinHostPort("127.0.0.1", port),
		})
		if err != nil {
			t.Fatalf("node %s HTTP forwarder: %v", n.ID(), err)
		}
		t.Cleanup(func() { p.Close() })
	}
}

func urlPort(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Port() == "" {
		t.Fatalf("node URL %q has no port (%v)", s, err)
	}
	return u.Port()
}
