package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// baoRequest is a request head offering the bao16 block encoding.
func baoRequest(target string) *wire.Request {
	return &wire.Request{Target: target, Header: wire.Header{"accept": carAccept, wire.HeaderBlocks: wire.BlocksBao16}}
}

// wtExchange sends req on a new stream and reads the whole response.
func wtExchange(ctx context.Context, sess *webtransport.Session, req *wire.Request) (*wire.Response, []byte, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, err
	}
	if _, err := req.WriteTo(str); err != nil {
		return nil, nil, err
	}
	// Once it has the whole request, the node may answer and stop reading
	// before the end of the stream reaches it (a short error response);
	// the close then fails, as a browser's does, and the response is
	// still there to read.
	_ = str.Close()
	return readWireResponse(str)
}

// sections decodes a CAR, or a bao16 body, into its sections' CIDs and
// blocks (decoding and checking each Bao encoding).
func sections(t *testing.T, body []byte, isBao bool) []string {
	t.Helper()
	r, err := car.NewReader(bytes.NewReader(body), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		c, _, err := r.NextSection()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(r.Payload())
		if err != nil {
			t.Fatal(err)
		}
		if isBao && car.BaoSection(c) {
			if data, err = bao.Decode(data, [32]byte(c.Digest)); err != nil {
				t.Fatalf("section %s: %v", c, err)
			}
		}
		out = append(out, c.String()+":"+string(data))
	}
}

// TestBaoStreamsSameBlocks: a client offering bao16 gets, over
// WebTransport and WebRTC, the CAR of the HTTP response with its raw
// blocks Bao-encoded, and the encoding named in the head; the blocks are
// the same. Responses that are not a 2xx CAR are unchanged.
func TestBaoStreamsSameBlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	sess := dialNode(ctx, t, n)
	pc := rtcDial(ctx, t, n)

	root := f.root.String()
	for _, tc := range []struct {
		target string
		isCAR  bool
		status int
	}{
		{"/ipfs/" + root + "?format=car", true, 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity", true, 200},
		{"/ipfs/" + root + "/big.bin?format=car&dag-scope=entity&entity-bytes=300000:700000", true, 200},
		{"/ipfs/" + root + "/a.txt?format=car&dag-scope=entity", true, 200},
		{"/ipfs/" + root + "?format=raw", false, 200},
		{"/ipfs/" + root + "/a.txt?format=raw", false, 406},
	} {
		t.Run(tc.target, func(t *testing.T) {
			req := baoRequest(tc.target)
			hs, _, hb := httpGet(t, n.HTTPURL()+tc.target, carAccept)
			rresp, rb, res, err := rtcDo(ctx, pc, req)
			if err != nil {
				t.Fatalf("webrtc: %v", err)
			}
			if len(res.control) != 0 {
				t.Fatalf("webrtc: control %q", res.control)
			}
			wresp, wb, err := wtExchange(ctx, sess, req)
			if err != nil {
				t.Fatal(err)
			}
			for _, got := range []struct {
				name string
				resp *wire.Response
				body []byte
			}{{"webtransport", wresp, wb}, {"webrtc", rresp, rb}} {
				if got.resp.Status != tc.status || hs != tc.status {
					t.Fatalf("%s: status %d, http %d, want %d", got.name, got.resp.Status, hs, tc.status)
				}
				if !tc.isCAR || tc.status != 200 {
					if enc := got.resp.BlockEncoding(); enc != "" || !bytes.Equal(got.body, hb) {
						t.Fatalf("%s: encoding %q on a response that is not a CAR (%d vs %d bytes)", got.name, enc, len(got.body), len(hb))
					}
					continue
				}
				if enc := got.resp.BlockEncoding(); enc != wire.BlocksBao16 {
					t.Fatalf("%s: encoding %q, want %q", got.name, enc, wire.BlocksBao16)
				}
				want := sections(t, hb, false)
				gotSecs := sections(t, got.body, true)
				if len(gotSecs) != len(want) {
					t.Fatalf("%s: %d sections, want %d", got.name, len(gotSecs), len(want))
				}
				for i := range want {
					if gotSecs[i] != want[i] {
						t.Fatalf("%s: section %d differs", got.name, i)
					}
				}
				if len(got.body) <= len(hb) {
					t.Fatalf("%s: the body (%d bytes) carries no parents over the CAR (%d)", got.name, len(got.body), len(hb))
				}
			}
		})
	}
}

// TestBaoNegotiation: a client that does not offer bao16 gets the plain
// CAR from a node that has it, and a node with DisableBao (as a node of
// protocol version 1) answers a client that offers it with the plain CAR.
func TestBaoNegotiation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := buildFixture(t)
	target := "/ipfs/" + f.root.String() + "/big.bin?format=car&dag-scope=entity"
	for _, tc := range []struct {
		name      string
		disable   bool
		offer     bool
		wantBao16 bool
		wantPlain bool
	}{
		{"old client, new node", false, false, false, true},
		{"new client, node without bao16", true, true, false, true},
		{"new client, new node", false, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, node.Config{DisableBao: tc.disable})
			if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
				t.Fatal(err)
			}
			runNode(t, n)
			sess := dialNode(ctx, t, n)
			req := baoRequest(target)
			if !tc.offer {
				delete(req.Header, wire.HeaderBlocks)
			}
			resp, body, err := wtExchange(ctx, sess, req)
			if err != nil {
				t.Fatal(err)
			}
			_, _, hb := httpGet(t, n.HTTPURL()+target, carAccept)
			if got := resp.BlockEncoding() == wire.BlocksBao16; got != tc.wantBao16 {
				t.Fatalf("encoding %q", resp.BlockEncoding())
			}
			if plain := bytes.Equal(body, hb); plain != tc.wantPlain {
				t.Fatalf("body is the plain CAR: %v, want %v", plain, tc.wantPlain)
			}
		})
	}
}

// TestBaoMidBodyFailureResets: a CAR that fails mid-stream still ends in a
// reset under bao16, over both transports, never in a clean end.
func TestBaoMidBodyFailureResets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	removeFullLeaves(t, n, f, 2)
	req := baoRequest("/ipfs/" + f.root.String() + "/big.bin?format=car")

	sess := dialNode(ctx, t, n)
	resp, body, err := wtExchange(ctx, sess, req)
	var se *webtransport.StreamError
	if (resp != nil && resp.Status != 200) || !errors.As(err, &se) || se.ErrorCode != wire.CodeInternal {
		t.Fatalf("webtransport: want a reset after the head, got %+v, %d bytes, %v", resp, len(body), err)
	}

	pc := rtcDial(ctx, t, n)
	var raw bytes.Buffer
	if _, err := req.WriteTo(&raw); err != nil {
		t.Fatal(err)
	}
	res, err := rtcExchange(ctx, pc, raw.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.control) != 1 || res.control[0] != node.ResetPrefix+strconv.Itoa(wire.CodeInternal) {
		t.Fatalf("webrtc: control %q, want a reset after the head", res.control)
	}
}

// TestStoreKeepsOutboards: a request for a bao16 response reaches the
// store with its outboards through boxo's traversal, and the store keeps,
// for each raw BLAKE3 block it checks, the block's outboard encoding; a
// request without them keeps none, and the CAR is the same.
func TestStoreKeepsOutboards(t *testing.T) {
	ctx := t.Context()
	f := buildFixture(t)
	n := newNode(t, node.Config{})
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	target := "/ipfs/" + f.root.String() + "/big.bin?format=car&dag-scope=entity"
	get := func(ctx context.Context) []byte {
		req := httptest.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		req.Header.Set("Accept", carAccept)
		rec := httptest.NewRecorder()
		n.ServeForTest(rec, req)
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		return rec.Body.Bytes()
	}
	octx, kept := node.OutboardsForTest(ctx)
	withOutboards := get(octx)
	if !bytes.Equal(withOutboards, get(ctx)) {
		t.Fatal("the CAR differs")
	}
	want := map[string][]byte{}
	for c, data := range f.blocks { // keyed by raw CIDs, whatever the block
		if bytes.Contains(f.big, data) {
			ob, _ := bao.AppendOutboard(nil, data)
			mh := c.Hash()
			want[string(mh[len(mh)-32:])] = ob
		}
	}
	got := kept()
	if len(got) != len(want) {
		t.Fatalf("%d outboards kept, want %d (big.bin's leaves)", len(got), len(want))
	}
	for d, ob := range want {
		if !bytes.Equal(got[d], ob) {
			t.Fatalf("the outboard of %x is not the block's", d)
		}
	}
}

// TestSliceStreams: a client offering bao16-slices gets, over WebTransport
// and WebRTC, the range's first and last leaf as the slices of the part
// the range covers, and the encoding named in the head; the body verifies
// to the range's bytes, is smaller than the bao16 body by what the range
// skips of those leaves, and counts the same whole blocks. A request
// without a range gets the bao16 body under the new name.
func TestSliceStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, n := servedFixture(ctx, t)
	sess := dialNode(ctx, t, n)
	pc := rtcDial(ctx, t, n)
	offer := wire.BlocksBao16Slices + ", " + wire.BlocksBao16

	for _, tc := range []struct {
		rng      string
		from, to int // the range's bytes of big.bin
		skipped  int // at least this many bytes fewer than bao16
	}{
		{"300000:700000", 300000, 700001, 32768 + 65536},
		{"458752:*", 458752, len(f.big), 192 << 10},
		{"", 0, len(f.big), 0},
	} {
		target := "/ipfs/" + f.root.String() + "/big.bin?format=car&dag-scope=entity"
		if tc.rng != "" {
			target += "&entity-bytes=" + tc.rng
		}
		t.Run(tc.rng, func(t *testing.T) {
			vreq, err := verify.ParseTarget(target)
			if err != nil {
				t.Fatal(err)
			}
			slicesReq := baoRequest(target)
			slicesReq.Header.Set(wire.HeaderBlocks, offer)
			_, wholeBody, err := wtExchange(ctx, sess, baoRequest(target))
			if err != nil {
				t.Fatal(err)
			}
			var wholeBlocks []int
			if _, err := io.ReadAll(verify.NewReader(bytes.NewReader(wholeBody), vreq, verify.Options{Bao: true, OnBlock: func(_ cid.CID, n int) { wholeBlocks = append(wholeBlocks, n) }})); err != nil {
				t.Fatal(err)
			}
			wresp, wb, err := wtExchange(ctx, sess, slicesReq)
			if err != nil {
				t.Fatal(err)
			}
			rresp, rb, _, err := rtcDo(ctx, pc, slicesReq)
			if err != nil {
				t.Fatalf("webrtc: %v", err)
			}
			for _, got := range []struct {
				name string
				resp *wire.Response
				body []byte
			}{{"webtransport", wresp, wb}, {"webrtc", rresp, rb}} {
				if enc := got.resp.BlockEncoding(); got.resp.Status != 200 || enc != wire.BlocksBao16Slices {
					t.Fatalf("%s: status %d, encoding %q", got.name, got.resp.Status, enc)
				}
				var blocks []int
				data, err := io.ReadAll(verify.NewReader(bytes.NewReader(got.body), vreq, verify.Options{Slices: true, OnBlock: func(_ cid.CID, n int) { blocks = append(blocks, n) }}))
				if err != nil || !bytes.Equal(data, f.big[tc.from:tc.to]) {
					t.Fatalf("%s: %d bytes of %d, %v", got.name, len(data), tc.to-tc.from, err)
				}
				if fmt.Sprint(blocks) != fmt.Sprint(wholeBlocks) {
					t.Fatalf("%s: blocks %v, bao16 %v", got.name, blocks, wholeBlocks)
				}
				if saved := len(wholeBody) - len(got.body); saved < tc.skipped || (tc.skipped == 0 && saved != 0) {
					t.Fatalf("%s: %d bytes, bao16 %d: want at least %d fewer", got.name, len(got.body), len(wholeBody), tc.skipped)
				}
			}
		})
	}
}
