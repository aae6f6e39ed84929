//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"

	"github.com/verity-cdn/verity/wasmclient"
)

// cutDialer fails the first stream to one node with err after n bytes,
// the way a bridging page ends a WebRTC stream.
type cutDialer struct {
	inner wasmclient.StreamDialer
	node  string
	n     int64
	err   error

	mu   sync.Mutex
	used bool
}

type cutStream struct {
	*net.TCPConn
	left int64
	err  error
}

func (s *cutStream) Read(p []byte) (int, error) {
	if s.left <= 0 {
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.TCPConn.Read(p)
	s.left -= int64(n)
	return n, err
}

func (d *cutDialer) DialStream(ctx context.Context, n wasmclient.Node) (wasmclient.Stream, error) {
	st, err := d.inner.DialStream(ctx, n)
	if err != nil || n.ID != d.node {
		return st, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.used {
		return st, nil
	}
	d.used = true
	return &cutStream{TCPConn: st.(*net.TCPConn), left: d.n, err: d.err}, nil
}

// A stream the bridging page ends (it went away, or gave up holding data
// for a worker that reads too slowly) is not the node's fault: the body
// still arrives whole, and the node is neither reported nor dropped.
func TestBridgeFailureIsNotTheNodes(t *testing.T) {
	s := demoSite(t)
	for _, bridgeErr := range []error{wasmclient.ErrBridgeGone, wasmclient.ErrBridgeOverrun} {
		t.Run(bridgeErr.Error(), func(t *testing.T) {
			var cut *cutDialer
			e := newEnv(t, s, 2, func(c *wasmclient.Config) {
				ft := c.Transports[0].(*wasmclient.FramedTransport)
				cut = &cutDialer{inner: ft.Dialer, node: "na", n: 40000, err: bridgeErr}
				c.Transports = []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: cut}}
			})
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/big.bin"})
			if r.err != nil || !bytes.Equal(r.body, s.files["big.bin"]) {
				t.Fatalf("read err %v, %d bytes; want the whole file", r.err, len(r.body))
			}
			if !cut.used {
				t.Fatal("na's stream was not cut")
			}
			if reps := e.client.Stats().Reports(); len(reps) != 0 {
				t.Fatalf("reports %+v, want none", reps)
			}
			if sc, _ := e.client.Scores().Get("na"); sc.Errors != 0 {
				t.Fatalf("na's score counts %v errors", sc.Errors)
			}
			// na is not dropped: with nb failing, the next request is
			// served by na, not by the gateway.
			e.nodes[1].setFault(fault{status: 503})
			before := len(e.nodes[0].targets())
			if r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/style.css"}); r.err != nil || r.resp.Node != "na" {
				t.Fatalf("after the bridge failure: served by %s (%v), want na", r.resp.Node, r.err)
			}
			if len(e.nodes[0].targets()) == before {
				t.Fatal("na was not asked")
			}
		})
	}
}
