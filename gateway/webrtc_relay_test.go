package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// Two gateways share one bus; a real node joins gateway B. An offer posted
// to gateway A is relayed to B's coordinator over NATS and A answers with
// B's node's SDP: the peer connects and content flows over it.
func TestWebRTCOfferRelayedToOtherGateway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := openBus(t, "gw-webrtc-relay")
	files := sitetest.Files()
	sites := NewStaticSites(map[string]string{})
	gwA := startCoordGateway(t, Config{Sites: sites, Bus: bus}, testCoordinator())
	gwB := startCoordGateway(t, Config{Sites: sites, Bus: bus}, testCoordinator())
	n, err := node.New(node.Config{
		DataDir:       filepath.Join(t.TempDir(), "node"),
		Coordinator:   gwB.URL(),
		OperatorToken: gwB.opToken,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	root := sitetest.Import(t, []*node.Node{n}, files)
	sites.Set("demo", root)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		<-done
		n.Close()
	})
	waitFor(t, "the node in A's session", func() bool {
		s := gwA.session(t, "demo")
		return len(s.Nodes) == 1 && s.Nodes[0].WebRTC
	})

	pc, offer := newTestPeer(t)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	resp, answer := gwA.do(t, http.MethodPost, gwA.SiteURL("demo")+WebRTCPrefix[1:]+n.ID(), bytes.NewReader([]byte(offer)), "Content-Type", "application/sdp")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/sdp" {
		t.Fatalf("offer through gateway A: %d %s", resp.StatusCode, answer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("not connected")
	}
	target := "/ipfs/" + root + "/media/big.bin?format=car&dag-scope=entity"
	wresp, body := channelGet(ctx, t, pc, target)
	hresp, err := http.Get(n.HTTPURL() + target)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if wresp.Status != 200 || !bytes.Equal(body, want) {
		t.Fatalf("webrtc %d, %d bytes; http %d bytes", wresp.Status, len(body), len(want))
	}

	// A malformed offer is refused by B's node and reported by A as 400.
	bad := []byte("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nbad\r\n")
	if resp, body := gwA.do(t, http.MethodPost, gwA.SiteURL("demo")+WebRTCPrefix[1:]+n.ID(), bytes.NewReader(bad)); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed offer through A: %d %s, want 400", resp.StatusCode, body)
	}
}
