//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/verity-cdn/verity/wasmclient"
)

// A node left for its rate over a visitor's slow link is not blamed
// because the page paused after the switch: the next node's bytes pile up
// in the transport meanwhile and are then read without a wait, at no rate
// the link carries. Both nodes deliver 40 KiB/s (the link's rate), so
// neither is at fault.
func TestPausedReaderBlamesNoSlowLinkNode(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.QuietTimeout = 500 * time.Millisecond
		c.Fallback = nil
	})
	for i, at := range []int64{8 << 10, 48 << 10} {
		e.nodes[i].setBao(true)
		e.nodes[i].setFault(fault{trickle: 16 << 10, trickleAt: at, trickleEvery: 400 * time.Millisecond})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/big.bin", Range: "bytes=0-262143"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 16<<10)
	for len(e.nodes[1].targets()) == 0 {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	// The page pauses (a media element that buffered enough).
	time.Sleep(2 * time.Second)
	rest, err := io.ReadAll(resp.Body)
	got.Write(rest)
	if err != nil || !bytes.Equal(got.Bytes(), s.files["big.bin"][:256<<10]) {
		t.Fatalf("read err %v, %d bytes", err, got.Len())
	}
	if sc, _ := e.client.Scores().Get("na"); sc.Errors != 0 {
		t.Fatalf("na scored %+v: both nodes delivered at the link's 40 KiB/s; the page's pause made nb look fast", sc)
	}
}

// A node that sends a bad block fast is not scored for its throughput:
// the bytes it sent before were not the file's, and a measured rate would
// rank it ahead again once its error is forgotten, and raise the floor
// the honest nodes are left below (an eighth of the best rate measured).
func TestBadBlockSetsNoThroughput(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) { c.Fallback = nil })
	bad := e.nodes[0]
	bad.setBao(true)
	bad.setFault(fault{corruptAt: 2 << 20})
	e.nodes[1].setBao(true)
	rankNaFirst(e, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(got, s.files["big.bin"]) {
		t.Fatalf("read err %v, %d bytes", err, len(got))
	}
	if len(bad.targets()) == 0 {
		t.Fatal("the lying node was never asked")
	}
	sc, _ := e.client.Scores().Get("na")
	if sc.Errors == 0 {
		t.Fatalf("the lying node was not scored for its bad block: %+v", sc)
	}
	if sc.Throughput != 0 {
		t.Errorf("the lying node's bad block scored its throughput: %+v", sc)
	}
	if r := e.client.Scores().FreshThroughput("na"); r != 0 {
		t.Errorf("the lying node's bad block set a fresh rate of %.0f B/s for the floors", r)
	}
}

// A source that fails on a bad block right after the page paused is not
// taken for one that closed an idle stream: it is blamed, not asked again
// as if the pause were the cause (the resumed answer, which starts past
// the block it lied about, need not lie again).
func TestBadBlockAfterPauseBlamed(t *testing.T) {
	s := demoSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		c.IdleTimeout = 500 * time.Millisecond
		c.Fallback = nil
	})
	big := s.files["big.bin"]
	// na answers plain CARs (blocks checked whole) with a byte of the
	// ninth block flipped: the first 2 MiB verify.
	rankNaFirst(e, 0)
	e.nodes[0].setFault(fault{corruptAt: 2<<20 + 100<<10})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/big.bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	head := make([]byte, 2<<20)
	if _, err := io.ReadFull(resp.Body, head); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // the page pauses three IdleTimeouts
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(head, rest...), big) {
		t.Fatalf("read err %v, %d bytes", err, len(head)+len(rest))
	}
	if sc, _ := e.client.Scores().Get("na"); sc.Errors == 0 {
		t.Errorf("na sent a bad block and was not scored for it: %+v (asked for %v)", sc, e.nodes[0].targets())
	}
}
