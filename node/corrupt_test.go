package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// corruptBlock flips the first byte of c's file in n's store, keeping its
// size, and returns the damaged bytes.
func corruptBlock(t *testing.T, n *node.Node, c cid.Cid) []byte {
	t.Helper()
	p, err := n.BlockPath(c)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	data[0] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// fetchOutcome is how a response ended: "status N" for a head that is
// not 200, "reset N" for a 200 head followed by a reset (WebTransport,
// WebRTC) or a cut body (HTTP), "complete" for a clean end.
type fetchOutcome struct {
	what string
	body []byte
}

// corruptFetch gets target from n over one transport, offering bao16 on
// the streams when bao.
type corruptFetch func(ctx context.Context, t *testing.T, n *node.Node, target string, bao bool) fetchOutcome

func corruptFetchWT(ctx context.Context, t *testing.T, n *node.Node, target string, bao bool) fetchOutcome {
	sess := dialNode(ctx, t, n)
	req := &wire.Request{Target: target, Header: wire.Header{"accept": carAccept}}
	if bao {
		req.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
	}
	resp, body, err := wtExchange(ctx, sess, req)
	return streamOutcome(t, resp, body, err)
}

func corruptFetchRTC(ctx context.Context, t *testing.T, n *node.Node, target string, bao bool) fetchOutcome {
	pc := rtcDial(ctx, t, n)
	req := &wire.Request{Target: target, Header: wire.Header{"accept": carAccept}}
	if bao {
		req.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
	}
	resp, body, res, err := rtcDo(ctx, pc, req)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(res.control) == 1 && strings.HasPrefix(res.control[0], node.ResetPrefix):
		if resp.Status != 200 {
			t.Fatalf("a reset after a %d head", resp.Status)
		}
		return fetchOutcome{"reset " + strings.TrimPrefix(res.control[0], node.ResetPrefix), body}
	case len(res.control) != 0:
		t.Fatalf("control %q", res.control)
	case resp.Status != 200:
		return fetchOutcome{fmt.Sprintf("status %d", resp.Status), body}
	}
	return fetchOutcome{"complete", body}
}

func corruptFetchHTTP(ctx context.Context, t *testing.T, n *node.Node, target string, _ bool) fetchOutcome {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.HTTPURL()+target, nil)
	req.Header.Set("Accept", carAccept)
	if strings.Contains(target, "format=raw") {
		req.Header.Set("Accept", "application/vnd.ipld.raw")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		t.Fatal(err)
	case resp.StatusCode != 200:
		return fetchOutcome{fmt.Sprintf("status %d", resp.StatusCode), body}
	case strings.Contains(target, "format=car"):
		// boxo ends a CAR that failed after the head with a marker that
		// is not CAR data.
		cr, err := car.NewReader(bytes.NewReader(body), car.Config{})
		for err == nil {
			_, _, err = cr.NextSection()
		}
		if err != io.EOF {
			return fetchOutcome{"malformed CAR", body}
		}
	}
	return fetchOutcome{"complete", body}
}

// streamOutcome classifies a WebTransport exchange.
func streamOutcome(t *testing.T, resp *wire.Response, body []byte, err error) fetchOutcome {
	t.Helper()
	var se *webtransport.StreamError
	switch {
	case resp == nil && errors.As(err, &se):
		// A reset right after the head may discard it unsent: the same
		// outcome as a reset the client sees after the head.
		return fetchOutcome{fmt.Sprintf("reset %d", se.ErrorCode), body}
	case resp == nil:
		t.Fatalf("no response head: %v", err)
	case errors.As(err, &se):
		if resp.Status != 200 {
			t.Fatalf("a reset after a %d head", resp.Status)
		}
		return fetchOutcome{fmt.Sprintf("reset %d", se.ErrorCode), body}
	case err != nil:
		t.Fatal(err)
	case resp.Status != 200:
		return fetchOutcome{fmt.Sprintf("status %d", resp.Status), body}
	}
	return fetchOutcome{"complete", body}
}

// TestCorruptBlockEveryPath: a block damaged on disk, read by any kind of
// request over any transport, is never sent: the response fails the way
// it does for any block the store cannot give (a status before the head,
// a reset after it), the node counts it, logs it and queues it for repair
// (without a coordinator the repair fails, and says so).
func TestCorruptBlockEveryPath(t *testing.T) {
	f := buildFixture(t)
	var leaf, small cid.Cid
	for c, data := range f.blocks {
		switch {
		case c.Prefix().Codec == cid.Raw && len(data) == 256<<10:
			leaf = c
		case c.Prefix().Codec == cid.Raw && bytes.Equal(data, f.small):
			small = c
		}
	}
	if !leaf.Defined() || !small.Defined() {
		t.Fatal("fixture without a full leaf or a.txt's block")
	}
	root := "/ipfs/" + f.root.String()
	reset := fmt.Sprintf("reset %d", wire.CodeInternal)
	for _, tc := range []struct {
		name    string
		fetch   corruptFetch
		bao     bool
		bad     cid.Cid
		target  string
		outcome string
		reads   int // the times the request reads the block
	}{
		{"webtransport bao16 leaf", corruptFetchWT, true, leaf, root + "/big.bin?format=car&dag-scope=entity", reset, 1},
		{"webtransport bao16 leaf in a range", corruptFetchWT, true, leaf, root + "/big.bin?format=car&dag-scope=entity&entity-bytes=0:1048575", reset, 1},
		{"webtransport bao16 single-block file", corruptFetchWT, true, small, root + "/a.txt?format=car&dag-scope=entity", reset, 1},
		{"webtransport bao16 raw block as the root", corruptFetchWT, true, leaf, "/ipfs/" + leaf.String() + "?format=car", reset, 1},
		{"webtransport bao16 directory", corruptFetchWT, true, f.root, root + "/big.bin?format=car&dag-scope=entity", "status 500", 2},
		{"webtransport bao16 format=raw", corruptFetchWT, true, leaf, "/ipfs/" + leaf.String() + "?format=raw", "status 500", 1},
		{"webtransport plain leaf", corruptFetchWT, false, leaf, root + "/big.bin?format=car&dag-scope=entity", reset, 1},
		{"webtransport plain single-block file", corruptFetchWT, false, small, root + "/a.txt?format=car&dag-scope=entity", reset, 1},
		{"webrtc bao16 leaf", corruptFetchRTC, true, leaf, root + "/big.bin?format=car&dag-scope=entity", reset, 1},
		{"webrtc bao16 single-block file", corruptFetchRTC, true, small, root + "/a.txt?format=car&dag-scope=entity", reset, 1},
		{"webrtc bao16 raw block as the root", corruptFetchRTC, true, leaf, "/ipfs/" + leaf.String() + "?format=car", reset, 1},
		{"http leaf", corruptFetchHTTP, false, leaf, root + "/big.bin?format=car&dag-scope=entity", "malformed CAR", 1},
		{"http format=raw", corruptFetchHTTP, false, leaf, "/ipfs/" + leaf.String() + "?format=raw", "status 500", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var logs lockedBuffer
			n := newNode(t, node.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
				t.Fatal(err)
			}
			runNode(t, n)
			bad := corruptBlock(t, n, tc.bad)
			got := tc.fetch(ctx, t, n, tc.target, tc.bao)
			if got.what != tc.outcome {
				t.Errorf("outcome %q, want %q", got.what, tc.outcome)
			}
			if len(bad) >= 16 && bytes.Contains(got.body, bad[:16]) {
				t.Error("the damaged bytes were sent")
			}
			_, _, metrics := httpGet(t, n.HTTPURL()+"/metrics", "")
			if !bytes.Contains(metrics, fmt.Appendf(nil, "verity_node_corrupt_blocks_total %d\n", tc.reads)) {
				t.Errorf("the damaged block not counted %d times:\n%s", tc.reads, grepLines(metrics, "corrupt"))
			}
			testutil.Eventually(t, 10*time.Second, "the repair tried", func() bool {
				l := []byte(logs.String())
				return grepLines(l, `msg="stored block failed its hash check; not serving it, fetching it again"`, "cid="+tc.bad.String()+" ") != "" &&
					grepLines(l, `msg="corrupt block not repaired"`, "cid="+tc.bad.String()+" ") != ""
			})
		})
	}
}

// grepLines returns the lines of b containing every one of ss.
func grepLines(b []byte, ss ...string) string {
	var out []string
lines:
	for l := range strings.SplitSeq(string(b), "\n") {
		for _, s := range ss {
			if !strings.Contains(l, s) {
				continue lines
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestCorruptBlockPaidStream: on a paid bao16 stream a damaged leaf ends
// the stream with the same reset as on an unpaid one, not a payment code,
// and is counted.
func TestCorruptBlockPaidStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pn := newPayNet(t, node.PaymentConfig{}, 64<<20)
	var leaf cid.Cid
	for c, data := range pn.fx.blocks {
		if c.Prefix().Codec == cid.Raw && len(data) == 256<<10 {
			leaf = c
			break
		}
	}
	corruptBlock(t, pn.node, leaf)
	w := pn.worker(t, testAccount, time.Hour)
	w.bao = true
	n, err := w.fetch(ctx, pn, "big.bin", true)
	if code, ok := resetCode(err); !ok || code != wire.CodeInternal {
		t.Fatalf("%d bytes verified, then %v; want a reset with code %d", n, err, wire.CodeInternal)
	}
	_, _, metrics := httpGet(t, pn.node.HTTPURL()+"/metrics", "")
	if !bytes.Contains(metrics, []byte("verity_node_bao_streams_total 1\n")) {
		t.Fatalf("the stream was not bao16:\n%s", grepLines(metrics, "bao"))
	}
	if !bytes.Contains(metrics, []byte("verity_node_corrupt_blocks_total 1\n")) {
		t.Fatalf("the damaged block not counted once:\n%s", grepLines(metrics, "corrupt"))
	}
}
