package node_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// rtcPaidFetch sends a paid request on a new data channel: receipts go
// back as binary messages while the body is verified. It returns the
// verified bytes and the control frames the node sent.
func (w *testWorker) rtcPaidFetch(ctx context.Context, pc *webrtc.PeerConnection, fx *fixture, path string, pay bool) (int64, []string, error) {
	root, err := cid.Parse(fx.root.String())
	if err != nil {
		return 0, nil, err
	}
	vreq := verify.Request{Root: root, Path: []string{path}}
	req := &wire.Request{Target: vreq.Target(), Header: wire.Header{"accept": "application/vnd.ipld.car; version=1; order=dfs; dups=y"}}
	req.Header.Set(wire.HeaderVoucher, w.enc)
	var head bytes.Buffer
	if _, err := req.WriteTo(&head); err != nil {
		return 0, nil, err
	}
	dc, err := pc.CreateDataChannel("req", nil)
	if err != nil {
		return 0, nil, err
	}
	pr, pw := io.Pipe()
	var (
		mu      sync.Mutex
		control []string
	)
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		if m.IsString {
			mu.Lock()
			control = append(control, string(m.Data))
			mu.Unlock()
			return
		}
		_, _ = pw.Write(m.Data)
	})
	dc.OnClose(func() { pw.Close() })
	dc.OnOpen(func() { _ = dc.Send(head.Bytes()) })
	go func() {
		<-ctx.Done()
		pw.CloseWithError(ctx.Err())
	}()
	send := func(r payment.Receipt, signed bool, err error) {
		if signed && err == nil && pay {
			b, _ := r.MarshalBinary()
			_ = dc.Send(b)
		}
	}
	br := bufio.NewReader(pr)
	resp, err := wire.ReadResponse(br)
	if err != nil {
		return 0, nil, err
	}
	if err := resp.Err(br); err != nil {
		return 0, nil, err
	}
	w.credit = resp.Header.Get(wire.HeaderCredit)
	vr := verify.NewReader(br, vreq, verify.Options{OnBlock: func(_ cid.CID, n int) {
		send(w.signer.Verified(w.node, uint64(n)))
	}})
	_, err = io.Copy(io.Discard, vr)
	_ = dc.Close()
	mu.Lock()
	defer mu.Unlock()
	return vr.Stats().Bytes, control, err
}

// Over WebRTC the same framing carries the voucher and the receipts; a
// worker that does not pay is cut with the reset control frame of
// CodePaymentTimeout.
func TestPaidWebRTCChannel(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{CreditWindow: 512 << 10, ReceiptTimeout: 2 * time.Second}, 64<<20)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pc := rtcDial(ctx, t, pn.node)

	w := pn.worker(t, testAccount, time.Hour)
	got, control, err := w.rtcPaidFetch(ctx, pc, pn.fx, "big.bin", true)
	if err != nil || len(control) != 0 || got < int64(len(pn.fx.big)) {
		t.Fatalf("paid channel: %d bytes, control %q, %v", got, control, err)
	}
	if w.credit != "524288" {
		t.Fatalf("paid channel's head: %s %q, want the window, 524288", wire.HeaderCredit, w.credit)
	}
	// Receipts made it at least up to what the window required.
	e, ok := pn.node.Receipts(w.signer.SessionKey())
	if !ok || e.Receipt.Bytes+512<<10 < uint64(got) {
		t.Fatalf("node holds %+v for %d delivered bytes", e.Receipt, got)
	}

	cheat := pn.worker(t, testAccount, time.Hour)
	got, control, err = cheat.rtcPaidFetch(ctx, pc, pn.fx, "big.bin", false)
	if err == nil || got > 512<<10 || len(control) != 1 || !strings.HasSuffix(control[0], "RESET 5") {
		t.Fatalf("unpaying channel: %d bytes, control %q, %v", got, control, err)
	}
}
