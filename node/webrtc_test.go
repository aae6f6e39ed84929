package node_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// rtcDial connects a native pion peer (the browser's role) to n on
// loopback, signaling through AcceptOffer.
func rtcDial(ctx context.Context, t *testing.T, n *node.Node) *webrtc.PeerConnection {
	t.Helper()
	pc := rtcDialNoCleanup(ctx, t, n)
	t.Cleanup(func() { pc.Close() })
	return pc
}

// rtcDialNoCleanup is rtcDial; the caller closes the peer connection.
func rtcDialNoCleanup(ctx context.Context, t testing.TB, n *node.Node) *webrtc.PeerConnection {
	t.Helper()
	return rtcDialMax(ctx, t, n, 0)
}

// rtcDialMax is rtcDialNoCleanup with a peer whose SDP announces
// max-message-size maxMsg (pion's default, 64 KiB, when 0).
func rtcDialMax(ctx context.Context, t testing.TB, n *node.Node, maxMsg uint32) *webrtc.PeerConnection {
	t.Helper()
	var se webrtc.SettingEngine
	if maxMsg > 0 {
		se.SetSCTPMaxMessageSize(maxMsg)
	}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	// An offer needs a data channel section; this one stays unused.
	if _, err := pc.CreateDataChannel("init", nil); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	answer, err := n.AcceptOffer(ctx, pc.LocalDescription().SDP)
	if err != nil {
		t.Fatalf("AcceptOffer: %v", err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("peer connection did not connect")
	}
	return pc
}

// rtcResult is what a data channel delivered.
type rtcResult struct {
	data    []byte   // binary messages, concatenated
	control []string // text messages
	sizes   []int    // binary message sizes
}

// rtcExchange opens a channel, sends raw (if not nil) and collects
// everything until the node closes the channel.
func rtcExchange(ctx context.Context, pc *webrtc.PeerConnection, raw []byte) (*rtcResult, error) {
	dc, err := pc.CreateDataChannel("req", nil)
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	res := &rtcResult{}
	closed := make(chan struct{})
	var once sync.Once
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		mu.Lock()
		defer mu.Unlock()
		if m.IsString {
			res.control = append(res.control, string(m.Data))
			return
		}
		res.data = append(res.data, m.Data...)
		res.sizes = append(res.sizes, len(m.Data))
	})
	dc.OnClose(func() { once.Do(func() { close(closed) }) })
	dc.OnOpen(func() {
		if raw != nil {
			_ = dc.Send(raw)
		}
	})
	select {
	case <-closed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	return res, nil
}

func rtcGet(ctx context.Context, pc *webrtc.PeerConnection, target, accept string) (*wire.Response, []byte, *rtcResult, error) {
	req := &wire.Request{Target: target, Header: wire.Header{}}
	if accept != "" {
		req.Header["accept"] = accept
	}
	return rtcDo(ctx, pc, req)
}

// rtcDo sends req on a new data channel and reads the wire response from
// what the node sent on it; res holds the raw messages and control frames.
func rtcDo(ctx context.Context, pc *webrtc.PeerConnection, req *wire.Request) (*wire.Response, []byte, *rtcResult, error) {
	var b bytes.Buffer
	if _, err := req.WriteTo(&b); err != nil {
		return nil, nil, nil, err
	}
	res, err := rtcExchange(ctx, pc, b.Bytes())
	if err != nil {
		return nil, nil, nil, err
	}
	resp, body, err := readWireResponse(bytes.NewReader(res.data))
	return resp, body, res, err
}

func TestHTTPAndWebRTCSameBytes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	pc := rtcDial(ctx, t, n)

	root := f.root.String()
	cases := []struct {
		target, accept string
		status         int
	}{
		{"/ipfs/" + root + "?format=car", "", 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", "", 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity&entity-bytes=300000:700000", "", 200},
		{"/ipfs/" + root + "/a.txt", carAccept, 200},
		{"/ipfs/" + root + "?format=raw", "", 200},
		{"/ipfs/" + root + "/a.txt?format=raw", "", 406},
		{"/ipfs/notacid?format=car", "", 400},
	}
	for _, tc := range cases {
		t.Run(tc.target, func(t *testing.T) {
			hs, hh, hb := httpGet(t, n.HTTPURL()+tc.target, tc.accept)
			resp, rb, res, err := rtcGet(ctx, pc, tc.target, tc.accept)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.control) != 0 {
				t.Fatalf("control frames %q", res.control)
			}
			for _, s := range res.sizes {
				if s > node.MaxDataChannelMessageSize {
					t.Fatalf("message of %d bytes", s)
				}
			}
			if hs != tc.status || resp.Status != tc.status {
				t.Fatalf("status http %d, webrtc %d, want %d (%s)", hs, resp.Status, tc.status, rb)
			}
			if tc.status != 200 {
				if len(rb) == 0 || len(rb) > wire.MaxErrorBody {
					t.Fatalf("error body of %d bytes", len(rb))
				}
				return
			}
			if !bytes.Equal(hb, rb) {
				t.Fatalf("bodies differ: http %d bytes, webrtc %d bytes", len(hb), len(rb))
			}
			if ct := resp.Header.Get("content-type"); ct != hh.Get("Content-Type") || ct == "" {
				t.Fatalf("content-type %q vs %q", ct, hh.Get("Content-Type"))
			}
		})
	}
	// Content only, as on WebTransport streams.
	resp, _, _, err := rtcGet(ctx, pc, "/metrics", "")
	if err != nil || resp.Status != 404 {
		t.Fatalf("/metrics over webrtc: %v %+v", err, resp)
	}
}

// The node sends a body in messages that start at DataChannelMessageSize
// and double up to the peer's max-message-size, at most
// MaxDataChannelMessageSize, whatever larger size the peer announces.
func TestWebRTCMessageSizes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	target := "/ipfs/" + f.root.String() + "/big.bin?format=car&dag-scope=entity"
	_, _, want := httpGet(t, n.HTTPURL()+target, "")
	for _, tc := range []struct {
		announce uint32
		largest  int
	}{
		{64 << 10, 64 << 10},
		{256 << 10, node.MaxDataChannelMessageSize},
		{0, node.MaxDataChannelMessageSize}, // pion, like Firefox, announces ~1 GiB
	} {
		t.Run(strconv.Itoa(int(tc.announce)), func(t *testing.T) {
			pc := rtcDialMax(ctx, t, n, tc.announce)
			defer pc.Close()
			_, body, res, err := rtcGet(ctx, pc, target, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, want) {
				t.Fatalf("body of %d bytes differs from HTTP's %d", len(body), len(want))
			}
			if res.sizes[0] > node.DataChannelMessageSize {
				t.Errorf("first message of %d bytes, want at most %d", res.sizes[0], node.DataChannelMessageSize)
			}
			largest := 0
			for i, s := range res.sizes {
				if i > 0 && s > 2*res.sizes[i-1] && s > node.DataChannelMessageSize {
					t.Errorf("message %d of %d bytes after one of %d: sizes grow at most twofold", i, s, res.sizes[i-1])
				}
				largest = max(largest, s)
			}
			if largest != tc.largest {
				t.Errorf("largest message %d bytes, want %d (sizes %v)", largest, tc.largest, res.sizes)
			}
		})
	}
}

func TestWebRTCBadOffers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := newNode(t, node.Config{WebRTC: node.WebRTCConfig{MaxPeers: 1}})
	runNode(t, n)
	for _, tc := range []struct {
		name, sdp string
		want      error
	}{
		{"oversized", "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" + strings.Repeat("a=x\r\n", node.MaxSDPBytes/5), node.ErrSDPTooLarge},
		{"garbage", "hello", node.ErrBadSDP},
		{"malformed", "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nnonsense\r\n", node.ErrBadSDP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.AcceptOffer(ctx, tc.sdp)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	if got := n.WebRTCPeers(); got != 0 {
		t.Fatalf("%d peers left after refused offers", got)
	}
	// MaxPeers 1: a second peer is refused while the first is open.
	rtcDial(ctx, t, n)
	_, err := n.AcceptOffer(ctx, "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	if !errors.Is(err, node.ErrTooManyPeers) {
		t.Fatalf("second peer: %v", err)
	}
	off := newNode(t, node.Config{WebRTC: node.WebRTCConfig{Disabled: true}})
	if _, err := off.AcceptOffer(ctx, "v=0"); !errors.Is(err, node.ErrWebRTCDisabled) {
		t.Fatalf("disabled: %v", err)
	}
}

func TestWebRTCStalledChannelTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := newNode(t, node.Config{
		ReadHeaderTimeout: 300 * time.Millisecond,
		WebRTC:            node.WebRTCConfig{IdleTimeout: 500 * time.Millisecond},
	})
	runNode(t, n)
	pc := rtcDial(ctx, t, n)
	start := time.Now()
	res, err := rtcExchange(ctx, pc, nil) // opens a channel, sends nothing
	if err != nil {
		t.Fatal(err)
	}
	if len(res.data) != 0 || len(res.control) != 1 || res.control[0] != node.ResetPrefix+strconv.Itoa(wire.CodeTimeout) {
		t.Fatalf("got %d bytes, control %q", len(res.data), res.control)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("closed after %v", d)
	}
	// With no channel left the peer is closed after the idle timeout.
	testutil.Eventually(t, 10*time.Second, "the idle peer closed", func() bool { return n.WebRTCPeers() == 0 })
}

func TestWebRTCMidBodyFailureResets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	removeFullLeaves(t, n, f, 2)
	pc := rtcDial(ctx, t, n)
	resp, _, res, err := rtcGet(ctx, pc, "/ipfs/"+f.root.String()+"/big.bin?format=car", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	if len(res.control) != 1 || res.control[0] != node.ResetPrefix+strconv.Itoa(wire.CodeInternal) {
		t.Fatalf("control %q, want a reset after the head", res.control)
	}
}

// Closing the node ends every peer connection and its goroutines.
func TestWebRTCNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f := buildFixture(t)
	n, err := node.New(node.Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	pc := rtcDialNoCleanup(ctx, t, n)
	if resp, _, _, err := rtcGet(ctx, pc, "/ipfs/"+f.root.String()+"/big.bin?format=car", ""); err != nil || resp.Status != 200 {
		t.Fatalf("get: %v", err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Pion's logs (ICE, DTLS, SCTP) go to the node's logger, with the node's
// id and the pion scope, and pion's chatter stays below Info.
func TestWebRTCLogsThroughNodeLogger(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(60*time.Second))
	defer cancel()
	var debug, info lockedBuffer
	h := slog.NewTextHandler(&debug, &slog.HandlerOptions{Level: slog.LevelDebug})
	hi := slog.NewTextHandler(&info, &slog.HandlerOptions{Level: slog.LevelInfo})
	n := newNode(t, node.Config{Logger: slog.New(teeHandler{h, hi})})
	runNode(t, n)
	rtcDial(ctx, t, n)
	want := "node=" + n.ID() + " pion=ice"
	testutil.Eventually(t, 10*time.Second, "pion's ICE logs in the node's log", func() bool {
		return strings.Contains(debug.String(), want)
	})
	for _, ln := range strings.Split(info.String(), "\n") {
		if strings.Contains(ln, " pion=") && !strings.Contains(ln, "level=WARN") && !strings.Contains(ln, "level=ERROR") {
			t.Errorf("pion logged at Info on a clean connection: %s", ln)
		}
	}
}

// teeHandler sends each record to both handlers.
type teeHandler [2]slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t[0].Enabled(ctx, l) || t[1].Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			err = errors.Join(err, h.Handle(ctx, r.Clone()))
		}
	}
	return err
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t[0].WithAttrs(as), t[1].WithAttrs(as)}
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	return teeHandler{t[0].WithGroup(name), t[1].WithGroup(name)}
}
