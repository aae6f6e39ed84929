package gateway

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// newTestPeer is a native pion peer playing the browser's part on
// loopback, with an offer ready to post.
func newTestPeer(t *testing.T) (*webrtc.PeerConnection, string) {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	if _, err := pc.CreateDataChannel("init", nil); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return pc, pc.LocalDescription().SDP
}

// channelGet sends one request on a new data channel and returns what the
// node sent until it closed the channel.
func channelGet(ctx context.Context, t *testing.T, pc *webrtc.PeerConnection, target string) (*wire.Response, []byte) {
	t.Helper()
	dc, err := pc.CreateDataChannel("req", nil)
	if err != nil {
		t.Fatal(err)
	}
	var head bytes.Buffer
	if _, err := (&wire.Request{Target: target}).WriteTo(&head); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var data bytes.Buffer
	closed := make(chan struct{})
	var once sync.Once
	dc.OnOpen(func() { _ = dc.Send(head.Bytes()) })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		mu.Lock()
		defer mu.Unlock()
		if m.IsString {
			t.Errorf("control frame %q", m.Data)
			return
		}
		data.Write(m.Data)
	})
	dc.OnClose(func() { once.Do(func() { close(closed) }) })
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("channel not closed")
	}
	mu.Lock()
	defer mu.Unlock()
	br := bufio.NewReader(bytes.NewReader(data.Bytes()))
	resp, err := wire.ReadResponse(br)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(br)
	return resp, body
}

// A real node joined to a real gateway is reachable over WebRTC through
// the gateway's signaling endpoint; bad offers and floods are refused.
func TestWebRTCSignalingRealNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bus := openBus(t, "gw-webrtc")
	files := sitetest.Files()
	sites := NewStaticSites(map[string]string{})
	tg := startCoordGateway(t, Config{
		Sites:            sites,
		Bus:              bus,
		WebRTCOfferRate:  0.01,
		WebRTCOfferBurst: 6,
	}, testCoordinator())
	n, err := node.New(node.Config{
		DataDir:       filepath.Join(t.TempDir(), "node"),
		Coordinator:   tg.URL(),
		OperatorToken: tg.opToken,
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
	waitFor(t, "the node in the session", func() bool {
		s := tg.session(t, "demo")
		return len(s.Nodes) == 1 && s.Nodes[0].WebRTC
	})

	post := func(nodeID string, body []byte) (*http.Response, []byte) {
		return tg.do(t, http.MethodPost, tg.SiteURL("demo")+WebRTCPrefix[1:]+nodeID, bytes.NewReader(body), "Content-Type", "application/sdp")
	}

	// 1: an offer relayed to the node, answered, and content over it.
	pc, offer := newTestPeer(t)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	resp, answer := post(n.ID(), []byte(offer))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/sdp" {
		t.Fatalf("offer: %d %s", resp.StatusCode, answer)
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
		t.Fatalf("webrtc %d, %d bytes (%q); http %d bytes (%s: %q)", wresp.Status, len(body), body[:min(len(body), 64)], len(want), hresp.Status, want[:min(len(want), 64)])
	}

	// 2-4: unknown node, oversized offer, malformed offer.
	for _, tc := range []struct {
		name, node string
		body       []byte
		status     int
	}{
		{"unknown node", "nunknown", []byte(offer), http.StatusNotFound},
		{"oversized", n.ID(), []byte(strings.Repeat("a=x\r\n", 4000)), http.StatusRequestEntityTooLarge},
		{"malformed", n.ID(), []byte("v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nbad\r\n"), http.StatusBadRequest},
	} {
		if resp, body := post(tc.node, tc.body); resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}
	if resp, _ := tg.do(t, http.MethodGet, tg.SiteURL("demo")+WebRTCPrefix[1:]+n.ID(), nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}

	// 5: a flood from one address is cut off with 429.
	limited := false
	for range 10 {
		resp, _ := post("nunknown", []byte(offer))
		if resp.StatusCode == http.StatusTooManyRequests {
			limited = resp.Header.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Fatal("no 429 with Retry-After after a flood of offers")
	}
}
