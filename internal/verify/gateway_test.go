//go:build !js

package verify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	"github.com/ipfs/boxo/gateway"
	blocks "github.com/ipfs/go-block-format"
	gocid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/verify"
)

const carAccept = "application/vnd.ipld.car; version=1; order=dfs; dups=y"

// fixture is a tree imported into a blockstore served by boxo's gateway.
type fixture struct {
	t    testing.TB
	bs   blockstore.Blockstore
	srv  *httptest.Server
	root cid.CID
	dir  string
}

type bsSink struct{ bs blockstore.Blockstore }

func (s bsSink) Put(ctx context.Context, c gocid.Cid, data []byte) error {
	b, err := blocks.NewBlockWithCid(data, c)
	if err != nil {
		return err
	}
	return s.bs.Put(ctx, b)
}

func newGateway(t testing.TB, bs blockstore.Blockstore) *httptest.Server {
	backend, err := gateway.NewBlocksBackend(blockservice.New(bs, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := gateway.NewHandler(gateway.Config{DeserializedResponses: false}, backend)
	mux := http.NewServeMux()
	mux.Handle("/ipfs/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func newFixture(t testing.TB, dir string, opts importer.Options) *fixture {
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	root, err := importer.Import(context.Background(), dir, bsSink{bs}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, bs: bs, srv: newGateway(t, bs), root: toCID(t, root), dir: dir}
}

func toCID(t testing.TB, c gocid.Cid) cid.CID {
	r, _, err := cid.Decode(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch returns the raw CAR response for req.
func (f *fixture) fetch(req verify.Request) []byte {
	f.t.Helper()
	hr, err := http.NewRequest("GET", f.srv.URL+req.Target(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	hr.Header.Set("Accept", carAccept)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		f.t.Fatalf("GET %s: %s: %s", req.Target(), resp.Status, body)
	}
	return body
}

// verifyAll runs the verifier over a CAR and returns entity and bytes.
func verifyAll(carBytes []byte, req verify.Request) (verify.Entity, []byte, error) {
	r := verify.NewReader(bytes.NewReader(carBytes), req, verify.Options{})
	ent, err := r.Entity()
	if err != nil {
		return ent, nil, err
	}
	if ent.Kind == verify.KindDirectory {
		return ent, nil, nil
	}
	b, err := io.ReadAll(r)
	return ent, b, err
}

func writeFile(t testing.TB, path string, data []byte) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sliceRange applies a ByteRange to data the way the gateway does.
func sliceRange(data []byte, rg *verify.ByteRange) []byte {
	if rg == nil {
		return data
	}
	sz := int64(len(data))
	from := rg.From
	if from < 0 {
		from = max(sz+from, 0)
	}
	to := rg.To
	if to < 0 {
		to = sz + to
	}
	end := sz
	if to < sz {
		end = to + 1
	}
	if from >= end {
		return []byte{}
	}
	return data[from:end]
}

// siteTree builds a small site: files of several sizes in nested dirs.
func siteTree(t testing.TB) (string, map[string][]byte) {
	dir := t.TempDir()
	files := map[string][]byte{
		"index.html":           []byte("<html>hello</html>"),
		"empty.txt":            {},
		"css/site.css":         []byte("body{}"),
		"img/a/b/c/deep.bin":   randBytes(1, 3000),
		"media/big.bin":        randBytes(2, 3*256<<10+12345),
		"media/exact.bin":      randBytes(3, 2*256<<10),
		"media/one-chunk.bin":  randBytes(4, 256<<10),
		"with space/ü n.txt":   []byte("unicode and spaces"),
		".well-known/security": []byte("contact: x"),
		"media/a%2Fb?x#y.txt":  []byte("escaping"),
	}
	for p, b := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(p)), b)
	}
	return dir, files
}

func splitPath(p string) []string {
	var out []string
	for _, s := range bytes.Split([]byte(p), []byte("/")) {
		out = append(out, string(s))
	}
	return out
}

func TestGatewayFiles(t *testing.T) {
	dir, files := siteTree(t)
	f := newFixture(t, dir, importer.Options{})
	for p, want := range files {
		t.Run(p, func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: splitPath(p)}
			ent, got, err := verifyAll(f.fetch(req), req)
			if err != nil {
				t.Fatal(err)
			}
			if ent.Kind != verify.KindFile || ent.Size != int64(len(want)) {
				t.Fatalf("entity %+v", ent)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestGatewayDirectories(t *testing.T) {
	dir, _ := siteTree(t)
	f := newFixture(t, dir, importer.Options{})
	for _, p := range [][]string{nil, {"css"}, {"img", "a", "b"}, {"with space"}} {
		req := verify.Request{Root: f.root, Path: p}
		ent, _, err := verifyAll(f.fetch(req), req)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if ent.Kind != verify.KindDirectory {
			t.Fatalf("%v: kind %v", p, ent.Kind)
		}
	}
}

func TestGatewayRawLeafRoot(t *testing.T) {
	dir := t.TempDir()
	data := randBytes(9, 1000)
	writeFile(t, filepath.Join(dir, "f"), data)
	f := newFixture(t, filepath.Join(dir, "f"), importer.Options{})
	if f.root.Codec != cid.CodecRaw {
		t.Fatalf("root %s is not a raw block", f.root)
	}
	for _, rg := range []*verify.ByteRange{nil, {From: 10, To: 20}, {From: -5, To: -1}} {
		req := verify.Request{Root: f.root, Range: rg}
		_, got, err := verifyAll(f.fetch(req), req)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, sliceRange(data, rg)) {
			t.Fatalf("range %v: got %d bytes", rg, len(got))
		}
	}
}

// rangeCases covers a file of size n.
func rangeCases(n int64, chunk int64) []verify.ByteRange {
	return []verify.ByteRange{
		{From: 0, To: -1},
		{From: 0, To: 0},
		{From: 0, To: 99},
		{From: chunk - 1, To: chunk},        // across a leaf boundary
		{From: chunk, To: chunk},            // single byte at a leaf start
		{From: chunk, To: 2*chunk - 1},      // exactly one leaf
		{From: chunk + 17, To: 3*chunk + 5}, // mid-block start, several leaves
		{From: n / 2, To: -1},               // open-ended
		{From: n - 1, To: n - 1},            // last byte
		{From: n - 10, To: n + 1000},        // past the end
		{From: -1, To: -1},                  // negative from: last byte
		{From: -(chunk + 3), To: -1},        // negative from across leaves
		{From: -n - 100, To: -1},            // negative beyond start
		{From: 5, To: -2},                   // negative to
		{From: n, To: -1},                   // empty at the end
		{From: n + 10, To: n + 20},          // entirely past the end
		{From: 1, To: math.MaxInt64},        // past any end: "*"
		{From: 0, To: math.MaxInt64},
	}
}

func TestGatewayRanges(t *testing.T) {
	dir := t.TempDir()
	const chunk = 1024
	data := randBytes(5, 200*chunk+77) // depth 2 with 16 links per node
	writeFile(t, filepath.Join(dir, "v.bin"), data)
	opts := importer.Options{ChunkSize: chunk, MaxLinks: 16}
	f := newFixture(t, dir, opts)
	for _, rg := range rangeCases(int64(len(data)), chunk) {
		rg := rg
		t.Run(fmt.Sprintf("%d:%d", rg.From, rg.To), func(t *testing.T) {
			req := verify.Request{Root: f.root, Path: []string{"v.bin"}, Range: &rg}
			carBytes := f.fetch(req)
			ent, got, err := verifyAll(carBytes, req)
			if err != nil {
				t.Fatal(err)
			}
			if ent.Size != int64(len(data)) {
				t.Fatalf("size %d", ent.Size)
			}
			if want := sliceRange(data, &rg); !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestGatewayHAMT(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{}
	for i := 0; i < 300; i++ {
		name := fmt.Sprintf("entry-%04d.txt", i)
		files[name] = []byte(name)
		writeFile(t, filepath.Join(dir, "big", name), files[name])
	}
	writeFile(t, filepath.Join(dir, "big", "sub", "x.txt"), []byte("nested in hamt"))
	f := newFixture(t, dir, importer.Options{HAMTShardingSize: 1024})
	// The sharded directory itself.
	req := verify.Request{Root: f.root, Path: []string{"big"}}
	ent, _, err := verifyAll(f.fetch(req), req)
	if err != nil || ent.Kind != verify.KindDirectory {
		t.Fatalf("hamt dir: %+v %v", ent, err)
	}
	for _, name := range []string{"entry-0000.txt", "entry-0150.txt", "entry-0299.txt"} {
		req := verify.Request{Root: f.root, Path: []string{"big", name}}
		_, got, err := verifyAll(f.fetch(req), req)
		if err != nil || !bytes.Equal(got, files[name]) {
			t.Fatalf("%s: %q %v", name, got, err)
		}
	}
	req = verify.Request{Root: f.root, Path: []string{"big", "sub", "x.txt"}}
	if _, got, err := verifyAll(f.fetch(req), req); err != nil || string(got) != "nested in hamt" {
		t.Fatalf("nested: %q %v", got, err)
	}
	// Absent names in the HAMT.
	for i := 0; i < 20; i++ {
		req := verify.Request{Root: f.root, Path: []string{"big", fmt.Sprintf("missing-%d", i)}}
		if _, _, err := verifyAll(f.fetch(req), req); !errorsIs(err, verify.ErrNotFound) {
			t.Fatalf("missing-%d: %v", i, err)
		}
	}
}

func TestGatewayNotFound(t *testing.T) {
	dir, _ := siteTree(t)
	f := newFixture(t, dir, importer.Options{})
	for _, p := range [][]string{{"nope"}, {"css", "nope.css"}, {"nope", "deeper"}, {"img", "a", "x", "y"}, {"index.html", "x"}} {
		req := verify.Request{Root: f.root, Path: p}
		_, _, err := verifyAll(f.fetch(req), req)
		if !errorsIs(err, verify.ErrNotFound) {
			t.Fatalf("%v: err = %v", p, err)
		}
	}
}

// blocksOf splits a CAR into its header roots and blocks.
type section struct {
	c    cid.CID
	data []byte
}

func blocksOf(t testing.TB, b []byte) ([]cid.CID, []section) {
	r, err := car.NewReader(bytes.NewReader(b), car.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var out []section
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			return r.Roots(), out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, section{c, data})
	}
}

func assemble(t testing.TB, roots []cid.CID, secs []section) []byte {
	var buf bytes.Buffer
	w, err := car.NewWriter(&buf, roots)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if err := w.Put(s.c, s.data); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}
