package node_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// Fuzzing a live node: arbitrary bytes as the request (and whatever
// follows it: the receipt stream) on a WebTransport stream and on a WebRTC
// data channel of a running node. Whatever the input, the node ends the
// stream within a bound, does not crash, and still serves a valid request
// on the same session afterwards; its goroutines and live heap stay bounded.
//
//	go test -run '^$' -fuzz FuzzLiveWebTransport -fuzztime 60s ./node/

// liveStreamBound is how long one fuzzed stream may stay open: the node's
// receipt timeout (1 s here) plus its head timeout (2 s), with room.
const liveStreamBound = 15 * time.Second

// liveSeeds are inputs near the protocol: valid requests, with receipts
// (malformed), cut short, oversized, and noise.
func liveSeeds(t testing.TB, root string) [][]byte {
	t.Helper()
	var valid bytes.Buffer
	req := &wire.Request{Target: "/ipfs/" + root + "?format=car&dag-scope=entity", Header: wire.Header{"accept": "application/vnd.ipld.car"}}
	if _, err := req.WriteTo(&valid); err != nil {
		t.Fatal(err)
	}
	v := valid.Bytes()
	withVoucher := &wire.Request{Target: "/ipfs/" + root, Header: wire.Header{wire.HeaderVoucher: "AAAA", "verity-blocks": "bao16"}}
	var vb bytes.Buffer
	_, _ = withVoucher.WriteTo(&vb)
	return [][]byte{
		v,
		append(append([]byte{}, v...), bytes.Repeat([]byte{0x01, 0xff, 0x00}, 200)...), // receipts of garbage
		vb.Bytes(),
		v[:len(v)/2],
		[]byte("VERITY/1 GET /ipfs/\r\n\r\n"),
		[]byte("VERITY/9 GET / \r\n"),
		append([]byte("VERITY/1 GET /ipfs/"+root+"\r\nx: "), bytes.Repeat([]byte("a"), 70<<10)...),
		bytes.Repeat([]byte{0}, 1024),
		{},
	}
}

func startLiveNode(f *testing.F) (*node.Node, *fixture) {
	fx := buildFixture(f)
	// Short head and receipt timeouts: an input that never completes a
	// request head (a data channel has no half-close) ends quickly.
	n := newNode(f, node.Config{ReadHeaderTimeout: testutil.Scale(2 * time.Second), Payments: node.PaymentConfig{ReceiptTimeout: time.Second}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	f.Cleanup(func() { cancel(); <-done })
	if _, err := n.ImportCAR(context.Background(), bytes.NewReader(fx.car)); err != nil {
		f.Fatal(err)
	}
	return n, fx
}

// liveBase is what the process holds before fuzzing: goroutines and live
// heap.
type liveBase struct {
	goroutines int
	heap       uint64
}

func measureLive() liveBase {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return liveBase{runtime.NumGoroutine(), ms.HeapAlloc}
}

// settles checks the process's goroutines and live heap come back near
// base once the fuzzed streams are gone: no leak per input.
func (b liveBase) settles(t testing.TB) {
	testutil.Eventually(t, 30*time.Second, "the node's goroutines and heap to settle", func() bool {
		now := measureLive()
		return now.goroutines <= b.goroutines+50 && now.heap <= b.heap+64<<20
	})
}

func FuzzLiveWebTransport(f *testing.F) {
	n, fx := startLiveNode(f)
	for _, s := range liveSeeds(f, fx.root.String()) {
		f.Add(s)
	}
	hash := n.Record().Record.CertHashes[0].SHA256
	var (
		mu    sync.Mutex
		sess  *webtransport.Session
		close func()
	)
	session := func(t *testing.T) *webtransport.Session {
		mu.Lock()
		defer mu.Unlock()
		if sess != nil && sess.Context().Err() == nil {
			return sess
		}
		if close != nil {
			close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(10*time.Second))
		defer cancel()
		s, c, err := dialWT(ctx, n.WebTransportURL(), hash)
		if err != nil {
			t.Fatalf("dial the live node: %v", err)
		}
		sess, close = s, c
		return sess
	}
	f.Cleanup(func() {
		if close != nil {
			close()
		}
	})
	base := measureLive()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := session(t)
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(liveStreamBound))
		defer cancel()
		str, err := s.OpenStreamSync(ctx)
		if err != nil {
			t.Fatalf("open a stream: %v", err)
		}
		_ = str.SetDeadline(time.Now().Add(testutil.Scale(liveStreamBound)))
		_, _ = str.Write(data)
		_ = str.Close()
		if _, err := io.Copy(io.Discard, io.LimitReader(str, 64<<20)); err != nil && isTimeout(err) {
			t.Fatalf("the node kept the stream open past %s for input %q", testutil.Scale(liveStreamBound), clip(data))
		}
		// Still serving.
		resp, body, err := wtGet(ctx, session(t), "/ipfs/"+fx.root.String()+"/a.txt?format=car&dag-scope=entity", "application/vnd.ipld.car")
		if err != nil || resp.Status != 200 || len(body) == 0 {
			t.Fatalf("after input %q the node no longer serves: %v %v", clip(data), resp, err)
		}
	})
	base.settles(f)
}

func FuzzLiveWebRTC(f *testing.F) {
	n, fx := startLiveNode(f)
	for _, s := range liveSeeds(f, fx.root.String()) {
		if len(s) <= 16<<10 { // a data channel message is at most 16 KiB here
			f.Add(s)
		}
	}
	pcCtx, pcCancel := context.WithTimeout(context.Background(), testutil.Scale(30*time.Second))
	defer pcCancel()
	pc := rtcDialNoCleanup(pcCtx, f, n)
	f.Cleanup(func() { pc.Close() })
	base := measureLive()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Scale(liveStreamBound))
		defer cancel()
		if _, err := rtcExchange(ctx, pc, data); errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("the node kept the channel open past %s for input %q", testutil.Scale(liveStreamBound), clip(data))
		}
		resp, body, _, err := rtcGet(ctx, pc, "/ipfs/"+fx.root.String()+"/a.txt?format=car&dag-scope=entity", "application/vnd.ipld.car")
		if err != nil || resp.Status != 200 || len(body) == 0 {
			t.Fatalf("after input %q the node no longer serves over WebRTC: %v %v", clip(data), resp, err)
		}
	})
	base.settles(f)
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func clip(b []byte) []byte {
	if len(b) > 120 {
		return b[:120]
	}
	return b
}
