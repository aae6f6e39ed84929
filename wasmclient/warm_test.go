//go:build !js

package wasmclient_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/verity-cdn/verity/wasmclient"
)

// warmDialer is a dialer with the warm-up capability: it records the
// nodes warmed, and fails them with err.
type warmDialer struct {
	wasmclient.StreamDialer
	err error

	mu     sync.Mutex
	warmed []string
}

func (d *warmDialer) Warm(ctx context.Context, n wasmclient.Node) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.warmed = append(d.warmed, n.ID)
	return d.err
}

// Warm loads the session once and connects the first node a request
// would use; the request after it loads no second session.
func TestWarm(t *testing.T) {
	s := buildSite(t, fileSpec{"index.html", []byte("<p>hello</p>")})
	var d *warmDialer
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		d = &warmDialer{StreamDialer: c.Transports[0].(*wasmclient.FramedTransport).Dialer}
		c.Transports = []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: d}}
	})
	if err := e.client.Warm(t.Context()); err != nil {
		t.Fatalf("Warm: %v", err)
	}
	if _, sessions, _ := e.gw.counts(); sessions != 1 {
		t.Errorf("sessions loaded by Warm: %d, want 1", sessions)
	}
	if len(d.warmed) != 1 || d.warmed[0] != "na" {
		t.Errorf("nodes warmed %v, want [na]", d.warmed)
	}
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/index.html"})
	if r.err != nil || r.resp.Status != 200 {
		t.Fatalf("fetch after Warm: %v", r.err)
	}
	if _, sessions, _ := e.gw.counts(); sessions != 1 {
		t.Errorf("sessions loaded after the fetch: %d, want 1", sessions)
	}

	// A node that cannot be reached is Warm's error; a transport without
	// the capability is skipped.
	d.err = errors.New("handshake failed")
	e2 := newEnv(t, s, 1, func(c *wasmclient.Config) {
		c.Transports = []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: d}}
	})
	if err := e2.client.Warm(t.Context()); !errors.Is(err, d.err) {
		t.Errorf("Warm with a failing node: %v, want %v", err, d.err)
	}
	e3 := newEnv(t, s, 1, nil)
	if err := e3.client.Warm(t.Context()); err != nil {
		t.Errorf("Warm without a warmable transport: %v", err)
	}
	if _, sessions, _ := e3.gw.counts(); sessions != 1 {
		t.Errorf("sessions loaded by Warm without a warmable transport: %d, want 1", sessions)
	}
}

// Warm returns the session's error when the gateway has none to give.
func TestWarmSessionError(t *testing.T) {
	e := newEnv(t, buildSite(t, fileSpec{"index.html", []byte("<p>hello</p>")}), 1, func(c *wasmclient.Config) {
		c.Session = &wasmclient.HTTPSessionLoader{Origin: "http://127.0.0.1:1"}
	})
	if err := e.client.Warm(t.Context()); !errors.Is(err, wasmclient.ErrSession) {
		t.Errorf("Warm without a gateway: %v, want ErrSession", err)
	}
}
