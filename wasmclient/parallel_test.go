//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/wasmclient"
)

var (
	largeOnce sync.Once
	theLarge  *site
)

// largeSite holds a file of 6 MiB and a bit: 25 blocks, 12 segments of
// 512 KiB with parallelTweak.
func largeSite(t testing.TB) *site {
	largeOnce.Do(func() {
		theLarge = buildSite(t,
			fileSpec{"large.bin", randomBytes(6*mib+777, 7)},
			fileSpec{"small.bin", randomBytes(600000, 8)},
		)
	})
	return theLarge
}

// parallelTweak makes files of 1 MiB and more parallel, in segments of
// 512 KiB, with a window of 4 segments and short hedge delays.
func parallelTweak(c *wasmclient.Config) {
	c.ParallelThreshold = 1 * mib
	c.SegmentSize = 512 << 10
	c.ReadAheadSegments = 4
	c.HedgeMin = 50 * time.Millisecond
	c.HedgeMax = 200 * time.Millisecond
}

// noHedgeTweak is parallelTweak with hedging out of the way (for tests
// that count requests; a loaded machine could otherwise trigger a hedge).
func noHedgeTweak(c *wasmclient.Config) {
	parallelTweak(c)
	c.HedgeMin, c.HedgeMax = time.Minute, time.Minute
}

// entityBytes returns the entity-bytes range of a target (ok false when
// the target has none).
func entityBytes(t testing.TB, target string) (from, to int64, ok bool) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	eb := u.Query().Get("entity-bytes")
	if eb == "" {
		return 0, 0, false
	}
	a, b, _ := strings.Cut(eb, ":")
	from, err1 := strconv.ParseInt(a, 10, 64)
	to, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("entity-bytes %q", eb)
	}
	return from, to, true
}

// hangMidFirstBlock is a fault that stalls every response in the middle of
// the first leaf block, after the path blocks (so the entity resolves).
func hangMidFirstBlock(t testing.TB, s *site, path string) fault {
	_, car := s.car("/ipfs/" + s.root.String() + "/" + path + "?format=car&dag-scope=entity&entity-bytes=0:0")
	return fault{hangAt: int64(len(car)) - 100<<10}
}

// TestParallelSplit: a large file (and a large range of it) is fetched from
// both nodes in block-aligned segments, each segment asked once, and the
// bytes arrive whole and in order; a small file stays on one stream.
func TestParallelSplit(t *testing.T) {
	s := largeSite(t)
	data := s.files["large.bin"]
	for _, tc := range []struct {
		name, rng string
		from, to  int64
	}{
		{"whole", "", 0, int64(len(data)) - 1},
		{"range", "bytes=1000003-5000001", 1000003, 5000001},
		{"open-ended", "bytes=3000000-", 3000000, int64(len(data)) - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, noHedgeTweak)
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin", Range: tc.rng})
			if r.err != nil || !bytes.Equal(r.body, data[tc.from:tc.to+1]) {
				t.Fatalf("err %v, %d bytes; want %d identical bytes", r.err, len(r.body), tc.to-tc.from+1)
			}
			if tc.rng != "" && r.resp.Status != 206 {
				t.Fatalf("status %d", r.resp.Status)
			}
			rec := e.client.Stats().Requests()[0]
			if rec.Parallel != 2 || rec.Error != "" || rec.Bytes != tc.to-tc.from+1 {
				t.Fatalf("record %+v", rec)
			}
			// Both nodes served segments; apart from the first request (the
			// one that resolved the entity and served the first segment),
			// the segments are block-aligned, disjoint and cover the rest.
			type span struct{ from, to int64 }
			var spans []span
			for i, n := range e.nodes {
				tg := n.targets()
				if len(tg) < 2-i {
					t.Fatalf("node %s asked %d times: %q", n.id, len(tg), tg)
				}
				for j, target := range tg {
					if i == 0 && j == 0 {
						continue
					}
					a, b, ok := entityBytes(t, target)
					if !ok {
						t.Fatalf("segment target without entity-bytes: %q", target)
					}
					if a%(256<<10) != 0 && a != tc.from {
						t.Errorf("segment start %d not block-aligned", a)
					}
					spans = append(spans, span{a, b})
				}
			}
			sort.Slice(spans, func(i, j int) bool { return spans[i].from < spans[j].from })
			next := tc.from + 512<<10 - tc.from%(512<<10)
			for _, sp := range spans {
				if sp.from != next {
					t.Fatalf("segments %v: want one starting at %d", spans, next)
				}
				next = sp.to + 1
			}
			if next != tc.to+1 {
				t.Fatalf("segments %v end at %d, want %d", spans, next-1, tc.to)
			}
		})
	}
	t.Run("small file single stream", func(t *testing.T) {
		e := newEnv(t, s, 2, parallelTweak)
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/small.bin"})
		if r.err != nil || !bytes.Equal(r.body, s.files["small.bin"]) {
			t.Fatalf("err %v", r.err)
		}
		if rec := e.client.Stats().Requests()[0]; rec.Parallel != 0 || len(e.nodes[1].targets()) != 0 {
			t.Fatalf("record %+v, second node asked %d times", rec, len(e.nodes[1].targets()))
		}
	})
	t.Run("one node single stream", func(t *testing.T) {
		e := newEnv(t, s, 1, parallelTweak)
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
		if r.err != nil || !bytes.Equal(r.body, data) || e.client.Stats().Requests()[0].Parallel != 0 {
			t.Fatalf("err %v, record %+v", r.err, e.client.Stats().Requests()[0])
		}
	})
}

// TestParallelNodeLanes: over a transport that asks for several lanes per
// node (WebRTC: the page spreads them over several peer connections), one
// node serves several segments of a large body at once, each asked once,
// and the bytes arrive whole and in order; a small body stays one stream.
func TestParallelNodeLanes(t *testing.T) {
	s := largeSite(t)
	data := s.files["large.bin"]
	e := newEnv(t, s, 1, func(c *wasmclient.Config) {
		noHedgeTweak(c)
		c.Transports[0].(*wasmclient.FramedTransport).Lanes = 3
	})
	n := e.nodes[0]
	n.mu.Lock()
	n.holdSegments = 2 // the two lanes besides the first stream's
	n.mu.Unlock()
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
	if r.err != nil || !bytes.Equal(r.body, data) {
		t.Fatalf("err %v, %d bytes; want %d identical bytes", r.err, len(r.body), len(data))
	}
	rec := e.client.Stats().Requests()[0]
	if rec.Parallel != 1 || rec.Lanes != 3 || rec.Error != "" || rec.Failovers != 0 {
		t.Fatalf("record %+v; want one node, 3 lanes", rec)
	}
	n.mu.Lock()
	most := n.maxSegments
	n.mu.Unlock()
	if most < 2 {
		t.Fatalf("at most %d segment requests in flight at the node; want 2 at once", most)
	}
	seen := map[string]bool{}
	for _, tg := range n.targets()[1:] {
		if seen[tg] {
			t.Fatalf("segment asked twice: %q", tg)
		}
		seen[tg] = true
	}
	if want := (len(data)+512<<10-1)/(512<<10) - 1; len(seen) != want {
		t.Fatalf("%d segment requests after the first stream; want %d", len(seen), want)
	}

	r = mustGet(t, e.client, wasmclient.FetchRequest{Path: "/small.bin"})
	if r.err != nil || !bytes.Equal(r.body, s.files["small.bin"]) {
		t.Fatalf("small.bin: err %v", r.err)
	}
	if rec := e.client.Stats().Requests()[1]; rec.Lanes != 0 {
		t.Fatalf("small.bin record %+v; want one stream", rec)
	}
}

// TestParallelWindow: the body never asks for more than the read-ahead
// window beyond what the reader consumed, and the window opens with what
// the reader takes: a reader that stops after its first bytes (a media
// element that has its metadata) has only its first segment fetched,
// verified and paid for, not the whole window.
func TestParallelWindow(t *testing.T) {
	s := largeSite(t)
	e := newEnv(t, s, 2, noHedgeTweak)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/large.bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	requests := func() int { return len(e.nodes[0].targets()) + len(e.nodes[1].targets()) }
	// settle reads the body to byte n and waits for the lanes to fetch
	// what the window allows and stop there, the reader holding still:
	// once every lane waits for work, each has looked for a segment since
	// its last one ended and found none.
	var got []byte
	settle := func(n int, want int) {
		t.Helper()
		buf := make([]byte, n-len(got))
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		got = append(got, buf...)
		testutil.EventuallyErr(t, 10*time.Second, "the lanes to fill the window and wait", func() error {
			if n := requests(); n < want {
				return fmt.Errorf("%d segment requests", n)
			}
			return lanesWaiting()
		})
		if r := requests(); r != want {
			t.Fatalf("%d segment requests with the reader at byte %d; want %d", r, n, want)
		}
	}
	// Segments of 512 KiB, a window of 4: the window opens one segment
	// beyond the reader's per half segment (256 KiB) the reader took.
	settle(1000, 1)
	settle(256<<10, 2)
	settle(600<<10, 4) // in the second segment, 2 more open: segments 0–3
	settle(1<<20, 6)   // in the third segment, the whole window: 2–5
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !bytes.Equal(append(got, rest...), s.files["large.bin"]) {
		t.Fatalf("err %v, %d bytes", err, len(got)+len(rest))
	}
}

// lanesWaiting returns nil once every lane of a parallel body is blocked
// waiting for work (in pbody.take's select), as the goroutine dump shows.
func lanesWaiting() error {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	lanes, waiting := 0, 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "wasmclient.(*lane).run(") {
			continue
		}
		lanes++
		if header, _, _ := strings.Cut(g, "\n"); strings.Contains(header, "[select") && strings.Contains(g, "wasmclient.(*pbody).take(") {
			waiting++
		}
	}
	if lanes == 0 || waiting < lanes {
		return fmt.Errorf("%d of %d lanes waiting for work", waiting, lanes)
	}
	return nil
}

// TestParallelHedge: a node that accepts requests but never sends a block
// is hedged: the other node serves its segments, the body is identical,
// and the stalled node is not reported (hedging is not a failure).
func TestParallelHedge(t *testing.T) {
	s := largeSite(t)
	e := newEnv(t, s, 2, parallelTweak)
	e.nodes[0].setFault(hangMidFirstBlock(t, s, "large.bin"))
	r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
	if r.err != nil || !bytes.Equal(r.body, s.files["large.bin"]) {
		t.Fatalf("err %v, %d bytes", r.err, len(r.body))
	}
	rec := e.client.Stats().Requests()[0]
	if rec.Hedges == 0 || rec.Parallel != 2 || rec.Error != "" {
		t.Fatalf("record %+v; want hedges", rec)
	}
	if reps := e.client.Stats().Reports(); len(reps) != 0 {
		t.Fatalf("reports %+v; a hedged node is not reported", reps)
	}
	// Every segment the stalled node was asked for, the other served.
	if len(e.nodes[1].targets()) < rec.Hedges {
		t.Fatalf("nb served %d requests for %d hedges", len(e.nodes[1].targets()), rec.Hedges)
	}
}

// TestParallelTricklingNodeIsHedged: a node that trickles its segments,
// each group inside any hedge delay, below MinRate, is hedged by a node
// that delivered at 4 times MinRate or more; the body is identical, and
// the slow node is not reported. Stall hedges are out of the way: without
// the rate rule, the trickle would hold the body for minutes. A node that
// sends the first 384 KiB of each 512 KiB segment at once and trickles
// the rest kept its segment's rate since it took it above MinRate until
// the segment was done (16 s, no hedge): the rate window moves on.
func TestParallelTricklingNodeIsHedged(t *testing.T) {
	s := largeSite(t)
	for _, tc := range []struct {
		name string
		at   int64 // bytes of each answer sent at once
	}{{"from the start", 8 << 10}, {"after a fast start", 384 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, func(c *wasmclient.Config) {
				noHedgeTweak(c)
				c.QuietTimeout = testutil.Scale(500 * time.Millisecond)
			})
			// 1 KiB every 40 ms (25 KiB/s) after the first bytes of
			// each answer: a 512 KiB segment in up to 20 s.
			e.nodes[0].setBao(true)
			e.nodes[0].setFault(fault{trickle: 1 << 10, trickleAt: tc.at, trickleEvery: 40 * time.Millisecond})
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
			if r.err != nil || !bytes.Equal(r.body, s.files["large.bin"]) {
				t.Fatalf("err %v, %d bytes", r.err, len(r.body))
			}
			// A loaded machine may see na's head later than QuietTimeout
			// and have nb serve the body alone; in parallel, na's
			// segments are hedged.
			rec := e.client.Stats().Requests()[0]
			if rec.Parallel > 0 && rec.Hedges == 0 || rec.Error != "" {
				t.Fatalf("record %+v; want hedges", rec)
			}
			if reps := e.client.Stats().Reports(); len(reps) != 0 {
				t.Fatalf("reports %+v; a hedged node is not reported", reps)
			}
		})
	}
}

// A node well above MinRate but far slower than another node has its
// segments hedged: measured in the same body, or, for the body's first
// segment, before it (a returning visitor's scores). One sending 16 KiB
// every 200 ms (80 KiB/s, 1.25 times MinRate) held each of its 512 KiB
// segments for about 6 s, and the reader with them (20 s for the body),
// while the other node delivered at loopback speed. With MinRate at 16
// KiB/s and 40 KiB/s from the slow node, the first segment was hedged
// only once the reader had half of it, after 6 s, though the other node
// was known to deliver 4 MiB/s. A node that lost a segment for its rate
// then took the next one, and held it as long.
func TestParallelFarSlowerNodeIsHedged(t *testing.T) {
	s := largeSite(t)
	for _, tc := range []struct {
		name    string
		minRate float64
		every   time.Duration // the slow node's time per 16 KiB
		scored  bool          // nb's throughput is in the scores
		bound   time.Duration
	}{
		{"measured in the body", 0, 200 * time.Millisecond, false, 10 * time.Second},
		{"measured before", 16 << 10, 400 * time.Millisecond, true, 3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, func(c *wasmclient.Config) {
				noHedgeTweak(c)
				c.QuietTimeout = testutil.Scale(500 * time.Millisecond)
				c.MinRate = tc.minRate
			})
			if tc.scored {
				rankNaFirst(e, 4<<20)
			}
			e.trickle(0, tc.every)
			start := time.Now()
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
			took := time.Since(start)
			if r.err != nil || !bytes.Equal(r.body, s.files["large.bin"]) {
				t.Fatalf("err %v, %d bytes", r.err, len(r.body))
			}
			rec := e.client.Stats().Requests()[0]
			if rec.Parallel > 0 && rec.Hedges == 0 || rec.Error != "" {
				t.Fatalf("record %+v; want hedges", rec)
			}
			if took > testutil.Scale(tc.bound) {
				t.Fatalf("took %v: the slow node held its segments", took)
			}
			if n := len(e.nodes[0].targets()); n != 1 {
				t.Fatalf("na asked %d times: a node whose segment went to a hedge for its rate takes no other while another node serves", n)
			}
			if reps := e.client.Stats().Reports(); len(reps) != 0 {
				t.Fatalf("reports %+v; a hedged node is not reported", reps)
			}
		})
	}
}

// A lane stopped for its rate runs again when every other lane stops: a
// body whose fast node failed after 2 MiB failed with it, no gateway
// configured, though the slower node was healthy.
func TestParallelStoppedLaneRunsAgain(t *testing.T) {
	s := largeSite(t)
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		noHedgeTweak(c)
		c.QuietTimeout = testutil.Scale(500 * time.Millisecond)
		c.MinRate = 16 << 10
		c.Fallback = nil
	})
	rankNaFirst(e, 8<<20)
	// About 530 KiB/s: 33 times MinRate, under an eighth of nb's score.
	e.trickle(0, 30*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/large.bin"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 64<<10)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if got.Len() >= 2<<20 {
			e.nodes[1].setFault(fault{status: http.StatusInternalServerError})
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("body failed after %d bytes: %v; na asked %d times", got.Len(), err, len(e.nodes[0].targets()))
		}
	}
	if !bytes.Equal(got.Bytes(), s.files["large.bin"]) {
		t.Fatal("the body differs from the file")
	}
}

// slowLinkEnv is two nodes answering bao16, MinRate 1 MiB/s and
// QuietTimeout 300 ms, no hedge for a stall: for the slow-link tests.
func slowLinkEnv(t *testing.T, s *site) *env {
	e := newEnv(t, s, 2, func(c *wasmclient.Config) {
		noHedgeTweak(c)
		c.QuietTimeout, c.MinRate = testutil.Scale(300*time.Millisecond), 1<<20
	})
	for _, n := range e.nodes {
		n.setBao(true)
	}
	return e
}

// slowLink has every node send 4 KiB every 10 ms (at most 400 KiB/s,
// under slowLinkEnv's MinRate), as over a visitor's slow link.
func (e *env) slowLink() {
	for _, n := range e.nodes {
		n.setFault(fault{trickle: 4 << 10, trickleAt: 8 << 10, trickleEvery: 10 * time.Millisecond})
	}
}

// getHedgedAtMostOnce fetches req, wants want and a record of at most one
// hedge.
func getHedgedAtMostOnce(t *testing.T, e *env, req wasmclient.FetchRequest, want []byte) {
	t.Helper()
	n := len(e.client.Stats().Requests())
	r := mustGet(t, e.client, req)
	if r.err != nil || !bytes.Equal(r.body, want) {
		t.Fatalf("err %v, %d bytes", r.err, len(r.body))
	}
	if rec := e.client.Stats().Requests()[n]; rec.Hedges > 1 || rec.Error != "" {
		t.Fatalf("record %+v; want at most one hedge over a link where no stream reaches MinRate", rec)
	}
}

// TestParallelSlowLinkHedgesOnceAtMost: when every node delivers below
// MinRate, as over a visitor's slow link, no node shows the link could
// carry more, and a slow segment is hedged at most once, by a node not
// measured yet (asking twice over the same slow link only halves each
// request's share of it).
func TestParallelSlowLinkHedgesOnceAtMost(t *testing.T) {
	s := largeSite(t)
	e := slowLinkEnv(t, s)
	e.slowLink()
	// Both nodes fetch in parallel, unless a loaded machine saw a head
	// later than QuietTimeout and had one node serve the range alone.
	getHedgedAtMostOnce(t, e, wasmclient.FetchRequest{Path: "/large.bin", Range: "bytes=0-2097151"}, s.files["large.bin"][:2<<20])
}

// TestParallelNodeDies: a node that dies mid-transfer is replaced; the
// body completes with identical bytes.
func TestParallelNodeDies(t *testing.T) {
	s := largeSite(t)
	data := s.files["large.bin"]
	t.Run("killed", func(t *testing.T) {
		e := newEnv(t, s, 2, parallelTweak)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := e.client.Fetch(ctx, wasmclient.FetchRequest{Path: "/large.bin"})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		head := make([]byte, 1*mib)
		if _, err := io.ReadFull(resp.Body, head); err != nil {
			t.Fatal(err)
		}
		e.nodes[0].close() // listener and every open stream
		rest, err := io.ReadAll(resp.Body)
		if err != nil || !bytes.Equal(append(head, rest...), data) {
			t.Fatalf("err %v, %d bytes", err, len(head)+len(rest))
		}
	})
	t.Run("truncated mid-segment", func(t *testing.T) {
		e := newEnv(t, s, 2, parallelTweak)
		_, car := s.car("/ipfs/" + s.root.String() + "/large.bin?format=car&dag-scope=entity&entity-bytes=524288:1048575")
		e.nodes[1].setFault(fault{truncateAt: int64(len(car)) / 2})
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
		if r.err != nil || !bytes.Equal(r.body, data) {
			t.Fatalf("err %v, %d bytes", r.err, len(r.body))
		}
		reps := e.client.Stats().Reports()
		if len(reps) != 1 || reps[0].Node != "nb" || reps[0].Reason != wasmclient.ReasonProtocol {
			t.Fatalf("reports %+v; want one protocol report against nb", reps)
		}
		if rec := e.client.Stats().Requests()[0]; rec.Failovers != 1 {
			t.Fatalf("record %+v", rec)
		}
	})
	t.Run("every node fails: gateway completes", func(t *testing.T) {
		e := newEnv(t, s, 2, parallelTweak)
		_, car := s.car("/ipfs/" + s.root.String() + "/large.bin?format=car&dag-scope=entity&entity-bytes=524288:1048575")
		e.nodes[0].setFault(fault{truncateAt: int64(len(car)) / 2})
		e.nodes[1].setFault(fault{corruptAt: int64(len(car)) / 2})
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
		if r.err != nil || !bytes.Equal(r.body, data) {
			t.Fatalf("err %v, %d bytes", r.err, len(r.body))
		}
		if fb, _, _ := e.gw.counts(); fb == 0 {
			t.Fatal("the gateway was not asked")
		}
	})
	t.Run("everything fails: an error, never a short body", func(t *testing.T) {
		e := newEnv(t, s, 2, parallelTweak)
		_, car := s.car("/ipfs/" + s.root.String() + "/large.bin?format=car&dag-scope=entity&entity-bytes=524288:1048575")
		e.nodes[0].setFault(fault{truncateAt: int64(len(car)) / 2})
		e.nodes[1].setFault(fault{status: 500})
		e.gw.setFault(fault{status: 500})
		r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
		if r.err == nil || wasmclient.HTTPStatus(r.err) != 502 {
			t.Fatalf("read err %v after %d bytes; want ErrNoSource", r.err, len(r.body))
		}
		if !bytes.Equal(r.body, data[:len(r.body)]) {
			t.Fatal("the bytes before the error differ from the file")
		}
	})
}

// TestParallelBadNode: a node answering a segment with blocks of another
// segment, or with its blocks out of order, is rejected and reported; the
// body is still exactly the file.
func TestParallelBadNode(t *testing.T) {
	s := largeSite(t)
	data := s.files["large.bin"]
	for _, tc := range []struct {
		name   string
		fault  fault
		reason string
	}{
		{"another segment", fault{retarget: func(tg string) string { return shiftRange(tg, 512<<10, 0) }}, wasmclient.ReasonBadBlock},
		{"shifted start", fault{retarget: func(tg string) string { return shiftRange(tg, 256<<10, 0) }}, wasmclient.ReasonBadBlock},
		{"shorter", fault{retarget: func(tg string) string { return shiftRange(tg, 0, -300000) }}, wasmclient.ReasonProtocol},
		{"out of order", fault{swapLast: true}, wasmclient.ReasonBadBlock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, s, 2, func(c *wasmclient.Config) {
				parallelTweak(c)
				c.MaxParallel = 2
			})
			// nb only gets segment requests (na resolved the entity), each
			// answered wrongly: it fails on its first one.
			e.nodes[1].setFault(tc.fault)
			r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"})
			if r.err != nil || !bytes.Equal(r.body, data) {
				t.Fatalf("err %v, %d bytes", r.err, len(r.body))
			}
			if tg := e.nodes[1].targets(); len(tg) != 1 {
				t.Fatalf("nb targets %q; want one, then dropped", tg)
			}
			reps := e.client.Stats().Reports()
			if len(reps) != 1 || reps[0].Node != "nb" || reps[0].Reason != tc.reason {
				t.Fatalf("reports %+v; want one %s report against nb", reps, tc.reason)
			}
		})
	}
}

// shiftRange moves a target's entity-bytes start back by back bytes (forward
// when it would go below zero) and changes its end by dto.
func shiftRange(target string, back, dto int64) string {
	i := strings.Index(target, "entity-bytes=")
	if i < 0 {
		return target
	}
	a, b, _ := strings.Cut(target[i+len("entity-bytes="):], ":")
	from, _ := strconv.ParseInt(a, 10, 64)
	to, _ := strconv.ParseInt(b, 10, 64)
	if back != 0 {
		if from >= back {
			from, to = from-back, to-back
		} else {
			from, to = from+back, to+back
		}
	}
	to += dto
	if to < from {
		to = from
	}
	return target[:i] + "entity-bytes=" + strconv.FormatInt(from, 10) + ":" + strconv.FormatInt(to, 10)
}

// TestParallelSlowLinkAfterFastHedgesOnceAtMost: scores measured over a
// fast link (they persist) say nothing of the link now. Once every stream
// is below MinRate, a slow segment is hedged at most once, as on a link
// never measured (judged by each node's rate in this body: by the scores,
// every slow segment was hedged, again after each race, 6 times).
func TestParallelSlowLinkAfterFastHedgesOnceAtMost(t *testing.T) {
	s := largeSite(t)
	e := slowLinkEnv(t, s)
	if r := mustGet(t, e.client, wasmclient.FetchRequest{Path: "/large.bin"}); r.err != nil {
		t.Fatal(r.err)
	}
	for _, id := range []string{"na", "nb"} {
		if sc, _ := e.client.Scores().Get(id); sc.Throughput < 4<<20 {
			t.Logf("%s measured at %.0f B/s only: the fast link is not shown", id, sc.Throughput)
		}
	}
	e.slowLink()
	getHedgedAtMostOnce(t, e, wasmclient.FetchRequest{Path: "/large.bin"}, s.files["large.bin"])
}

// TestParallelShortTransferMeasuresNoRate: a body's last segment (777
// bytes here) comes with its head, in microseconds; scored, it made its
// node show tens of MB/s over a link below MinRate, and hedge every slow
// segment after it.
func TestParallelShortTransferMeasuresNoRate(t *testing.T) {
	s := largeSite(t)
	e := slowLinkEnv(t, s)
	e.slowLink()
	getHedgedAtMostOnce(t, e, wasmclient.FetchRequest{Path: "/large.bin"}, s.files["large.bin"])
}
