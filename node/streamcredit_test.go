package node_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// A browser does not queue a stream the session's stream limit does not
// allow yet: Chromium's createBidirectionalStream fails at once ("Failed to
// create bidirectional stream"). So every stream the node finishes with must
// return its credit to the client, whatever way it ended, or a long visit
// (a video's segments, a site's requests) runs out of streams part way and
// the node looks unreachable. The client here opens each stream without
// waiting (OpenStream, not OpenStreamSync), as a browser does, for several
// times the node's limit, one after another.
func TestStreamsReturnTheirCredit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	f := buildFixture(t)
	const limit = 4
	n := newNode(t, node.Config{MaxStreamsPerSession: limit})
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	sess := dialNode(ctx, t, n)
	root := f.root.String()
	kinds := []struct {
		name, target, accept string
		bao, cancel          bool
	}{
		{"car", "/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", "", false, false},
		{"bao16", "/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", "", true, false},
		{"raw block", "/ipfs/" + root + "?format=raw", "", false, false},
		{"not found", "/ipfs/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy?format=raw", "", false, false},
		{"bad request", "/ipfs/notacid?format=car", "", false, false},
		// The reader goes away part way through the body, as a cancelled
		// fetch's stream does (both directions reset).
		{"cancelled mid-body", "/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", "", true, true},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			for i := range 5 * (limit + 4) {
				str := openedAtOnce(t, sess, i)
				req := &wire.Request{Target: k.target, Header: wire.Header{}}
				if k.bao {
					req = baoRequest(k.target)
				}
				if _, err := req.WriteTo(str); err != nil {
					t.Fatal(err)
				}
				// Every other stream ends its request (FIN) only after the
				// response came, after the node read the request head.
				lateFIN := i%2 == 1
				// The node may have answered and stopped reading already
				// (a refused request, or a fast answer): the close then
				// fails, as a browser's does, and is ignored as the worker
				// ignores it.
				if !lateFIN {
					_ = str.Close()
				}
				if k.cancel {
					if _, err := io.ReadFull(str, make([]byte, 1000)); err != nil {
						t.Fatal(err)
					}
					str.CancelRead(0)
					str.CancelWrite(0)
				} else if _, _, err := readWireResponse(str); err != nil {
					t.Fatal(fmt.Errorf("stream %d: %w", i, err))
				}
				if lateFIN {
					_ = str.Close()
				}
			}
		})
	}
}

// The same for paid streams, which end after the client's last receipt and
// FIN (the node waits for them), many more of them than the node's limit.
func TestPaidStreamsReturnTheirCredit(t *testing.T) {
	const limit = 4
	pn := newPayNet(t, node.PaymentConfig{}, 256<<20)
	pn.nodeConfig = func(c *node.Config) { c.MaxStreamsPerSession = limit }
	n, sess := pn.addNode(t)
	w := newTestWorkerFor(t, pn.gwKey, testAccount, time.Hour, n.ID())
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(60*time.Second))
	defer cancel()
	for i := range 5 * (limit + 4) {
		if got, err := w.fetchOn(ctx, sess, pn.fx, "big.bin", true); err != nil || got == 0 {
			t.Fatalf("paid stream %d: %d bytes, %v", i, got, err)
		}
		s := openedAtOnce(t, sess, i)
		s.CancelRead(0)
		s.CancelWrite(0)
	}
}

// openedAtOnce opens a stream on sess the way a browser does, failing at
// once when the node's stream limit does not allow it, and tries again
// until it opens: the credit of a stream the node finished with comes back
// in a MAX_STREAMS frame, a round trip later (longer on a loaded machine),
// and a stream whose credit never comes back fails the test.
func openedAtOnce(t *testing.T, sess *webtransport.Session, i int) *webtransport.Stream {
	t.Helper()
	var str *webtransport.Stream
	testutil.EventuallyErr(t, 10*time.Second, "a stream opened without waiting", func() error {
		s, err := sess.OpenStream()
		if err != nil {
			return fmt.Errorf("stream %d: %w (the node has not returned the credit of the streams it finished)", i, err)
		}
		str = s
		return nil
	})
	return str
}
