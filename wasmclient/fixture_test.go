//go:build !js

package wasmclient_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	offline "github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	gocid "github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/wasmclient"
)

// site is a UnixFS tree built with the project's import profile (CIDv1, raw
// leaves, 256 KiB chunks, BLAKE3, 174 links) and served by boxo's trustless
// gateway handler.
type site struct {
	root    gocid.Cid
	files   map[string][]byte // path (no leading slash) → content
	handler http.Handler
}

type fileSpec struct {
	path string
	data []byte
}

func randomBytes(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func buildSite(t testing.TB, files ...fileSpec) *site {
	t.Helper()
	return buildSiteChunked(t, 256<<10, files...)
}

// buildSiteChunked is buildSite with files cut into chunk-byte leaves.
func buildSiteChunked(t testing.TB, chunk int64, files ...fileSpec) *site {
	t.Helper()
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	bsvc := blockservice.New(bs, offline.Exchange(bs))
	dserv := merkledag.NewDAGService(bsvc)
	prefix := gocid.Prefix{Version: 1, Codec: gocid.DagProtobuf, MhType: mh.BLAKE3, MhLength: -1}

	addFile := func(data []byte) ipld.Node {
		db, err := (&helpers.DagBuilderParams{
			Maxlinks:   174,
			RawLeaves:  true,
			CidBuilder: prefix,
			Dagserv:    dserv,
		}).New(chunker.NewSizeSplitter(bytes.NewReader(data), chunk))
		if err != nil {
			t.Fatal(err)
		}
		n, err := balanced.Layout(db)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	type dir struct {
		d    uio.Directory
		subs map[string]*dir
	}
	newDir := func() *dir {
		d, err := uio.NewDirectory(dserv)
		if err != nil {
			t.Fatal(err)
		}
		d.SetCidBuilder(prefix)
		return &dir{d: d, subs: map[string]*dir{}}
	}
	root := newDir()
	s := &site{files: map[string][]byte{}}
	for _, f := range files {
		s.files[f.path] = f.data
		parts := strings.Split(f.path, "/")
		cur := root
		for _, p := range parts[:len(parts)-1] {
			if cur.subs[p] == nil {
				cur.subs[p] = newDir()
			}
			cur = cur.subs[p]
		}
		if err := cur.d.AddChild(ctx, parts[len(parts)-1], addFile(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	var finish func(d *dir) ipld.Node
	finish = func(d *dir) ipld.Node {
		for name, sub := range d.subs {
			if err := d.d.AddChild(ctx, name, finish(sub)); err != nil {
				t.Fatal(err)
			}
		}
		n, err := d.d.GetNode()
		if err != nil {
			t.Fatal(err)
		}
		if err := dserv.Add(ctx, n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s.root = finish(root).Cid()

	backend, err := gateway.NewBlocksBackend(bsvc)
	if err != nil {
		t.Fatal(err)
	}
	s.handler = gateway.NewHandler(gateway.Config{NoDNSLink: true, DeserializedResponses: false}, backend)
	return s
}

// car returns the CAR the trustless gateway answers for target.
func (s *site) car(target string) (int, []byte) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept", wasmclient.CARAccept)
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// fault makes a source misbehave on the CAR it serves.
type fault struct {
	status     int   // answer this status instead
	corruptAt  int64 // flip the byte at this offset of the CAR (0: no)
	truncateAt int64 // end the stream after this many CAR bytes (0: no)
	hangAt     int64 // stop sending (without closing) after this many bytes (0: no)
	// retarget, when set, makes the source answer another target than the
	// one asked for (blocks for another range, say).
	retarget func(target string) string
	swapLast bool          // send the CAR's last two blocks in reverse order
	silent   bool          // take the request and answer nothing, not even a head
	delay    time.Duration // wait this long before answering
	// trickle, when set, sends the CAR after its first trickleAt bytes in
	// pieces of trickle bytes, one every trickleEvery.
	trickle      int
	trickleAt    int64
	trickleEvery time.Duration
}

// apply writes car to w with the fault; it blocks on hang until ctx is done.
func (f fault) apply(ctx context.Context, w io.Writer, car []byte) {
	if f.swapLast {
		car = swapLastBlocks(car)
	}
	if f.corruptAt > 0 && f.corruptAt < int64(len(car)) {
		car = bytes.Clone(car)
		car[f.corruptAt] ^= 0x55
	}
	if f.truncateAt > 0 && f.truncateAt < int64(len(car)) {
		car = car[:f.truncateAt]
	}
	if f.trickle > 0 && f.trickleAt < int64(len(car)) {
		flush := func() {
			if fl, ok := w.(http.Flusher); ok {
				fl.Flush()
			}
		}
		_, _ = w.Write(car[:f.trickleAt])
		flush()
		for rest := car[f.trickleAt:]; len(rest) > 0; {
			select {
			case <-time.After(f.trickleEvery):
			case <-ctx.Done():
				return
			}
			n := min(f.trickle, len(rest))
			if _, err := w.Write(rest[:n]); err != nil {
				return
			}
			flush()
			rest = rest[n:]
		}
		return
	}
	if f.hangAt > 0 && f.hangAt < int64(len(car)) {
		_, _ = w.Write(car[:f.hangAt])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		<-ctx.Done()
		return
	}
	_, _ = w.Write(car)
}

// swapLastBlocks re-encodes car with its last two blocks exchanged.
func swapLastBlocks(b []byte) []byte {
	r, err := car.NewReader(bytes.NewReader(b), car.Config{})
	if err != nil {
		panic(err)
	}
	type blk struct {
		c    cid.CID
		data []byte
	}
	var blks []blk
	for {
		c, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		blks = append(blks, blk{c, data})
	}
	if n := len(blks); n >= 2 {
		blks[n-1], blks[n-2] = blks[n-2], blks[n-1]
	}
	var out bytes.Buffer
	w, err := car.NewWriter(&out, r.Roots())
	if err != nil {
		panic(err)
	}
	for _, x := range blks {
		if err := w.Put(x.c, x.data); err != nil {
			panic(err)
		}
	}
	return out.Bytes()
}

// node is a framed VERITY/1 server on TCP loopback serving one site.
type node struct {
	id   string
	addr string
	site *site
	ln   net.Listener

	mu       sync.Mutex
	fault    fault
	requests []string
	bao      bool // serve the bao16 block encoding to clients offering it
	offers   int  // requests that offered bao16
	// Segment requests (with entity-bytes) in flight, and the most seen at
	// once; with holdSegments > 1 each waits (a bounded time) until that
	// many have been in flight at once before it answers, so a test sees
	// them overlap.
	segments, maxSegments, holdSegments int
	segWake                             chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startNode(t testing.TB, id string, s *site) *node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{id: id, addr: ln.Addr().String(), site: s, ln: ln, ctx: ctx, cancel: cancel}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				n.serve(c)
			}()
		}
	}()
	t.Cleanup(n.close)
	return n
}

func (n *node) close() {
	n.cancel()
	_ = n.ln.Close()
	n.wg.Wait()
}

func (n *node) setFault(f fault) {
	n.mu.Lock()
	n.fault = f
	n.mu.Unlock()
}

func (n *node) targets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.requests...)
}

func (n *node) serve(c net.Conn) {
	defer c.Close()
	stop := context.AfterFunc(n.ctx, func() { _ = c.Close() })
	defer stop()
	req, err := wire.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return
	}
	offered := req.BlockEncoding(wire.BlocksBao16) != ""
	n.mu.Lock()
	f, useBao := n.fault, n.bao && offered
	n.requests = append(n.requests, req.Target)
	if offered {
		n.offers++
	}
	n.mu.Unlock()
	if f.silent {
		<-n.ctx.Done()
		return
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-n.ctx.Done():
			return
		}
	}
	if f.status != 0 {
		_, _ = (&wire.Response{Status: f.status}).WriteTo(c)
		_, _ = io.WriteString(c, "injected failure")
		return
	}
	target := req.Target
	if strings.Contains(target, "entity-bytes=") {
		defer n.segment()()
	}
	if f.retarget != nil {
		target = f.retarget(target)
	}
	code, car := n.site.car(target)
	if code != http.StatusOK {
		_, _ = (&wire.Response{Status: code}).WriteTo(c)
		return
	}
	head := &wire.Response{Status: 200, Header: wire.Header{"content-type": wasmclient.CARAccept}}
	if useBao {
		// As a node does: the CAR transcoded, faults applied to the
		// bytes on the wire.
		head.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
		car = toBao(car)
	}
	_, _ = head.WriteTo(c)
	f.apply(n.ctx, c, car)
}

// segment counts a segment request in flight until the returned func runs;
// with holdSegments set it first waits until that many have been in
// flight at once.
func (n *node) segment() func() {
	n.mu.Lock()
	n.segments++
	n.maxSegments = max(n.maxSegments, n.segments)
	if n.segWake == nil {
		n.segWake = make(chan struct{})
	}
	if n.segments == n.holdSegments {
		close(n.segWake)
		n.segWake = make(chan struct{})
	}
	hold, wake := n.maxSegments < n.holdSegments, n.segWake
	n.mu.Unlock()
	if hold {
		select {
		case <-wake:
		case <-time.After(testutil.Scale(5 * time.Second)):
		case <-n.ctx.Done():
		}
	}
	return func() {
		n.mu.Lock()
		n.segments--
		n.mu.Unlock()
	}
}

// setBao makes the node serve the bao16 block encoding when offered.
func (n *node) setBao(on bool) {
	n.mu.Lock()
	n.bao = on
	n.mu.Unlock()
}

// baoOffers is the number of requests that offered bao16.
func (n *node) baoOffers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.offers
}

// toBao transcodes a CAR into its bao16 body.
func toBao(b []byte) []byte {
	var out bytes.Buffer
	w := car.NewBaoWriter(&out, 0)
	if _, err := w.Write(b); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return out.Bytes()
}

// tcpDialer dials the test nodes by id.
type tcpDialer struct {
	mu    sync.Mutex
	addrs map[string]string
}

func (d *tcpDialer) DialStream(ctx context.Context, n wasmclient.Node) (wasmclient.Stream, error) {
	d.mu.Lock()
	addr, ok := d.addrs[n.ID]
	d.mu.Unlock()
	if !ok {
		return nil, wasmclient.ErrNoAddress
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// gatewayServer plays the gateway's part of the contract: session, CAR
// fallback, reports.
type gatewayServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	site     *site
	nodes    []wasmclient.Node
	fault    fault
	reports  []wasmclient.Report
	fallback int      // fallback requests served
	sessions int      // session documents served
	scores   [][]byte // scores documents posted
}

func startGateway(t testing.TB, s *site, nodes ...*node) *gatewayServer {
	t.Helper()
	g := &gatewayServer{site: s}
	for _, n := range nodes {
		g.nodes = append(g.nodes, wasmclient.Node{ID: n.id, WebTransport: "https://" + n.addr + "/verity/v1"})
	}
	ctx, cancel := context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.verity/v1/session", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.sessions++
		doc := map[string]any{"version": 1, "site": "demo", "root": g.site.root.String(), "ttl": 30,
			"fallback": "/.verity/v1/ipfs", "nodes": g.nodes}
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /.verity/v1/ipfs/", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.fallback++
		f, st := g.fault, g.site
		g.mu.Unlock()
		if f.status != 0 {
			http.Error(w, "injected failure", f.status)
			return
		}
		code, car := st.car(strings.TrimPrefix(r.URL.RequestURI(), "/.verity/v1"))
		if code != http.StatusOK {
			http.Error(w, "upstream", code)
			return
		}
		w.Header().Set("Content-Type", wasmclient.CARAccept)
		f.apply(r.Context(), w, car)
	})
	mux.HandleFunc("POST /.verity/v1/report", func(w http.ResponseWriter, r *http.Request) {
		var rep wasmclient.Report
		if err := json.NewDecoder(io.LimitReader(r.Body, 4<<10)).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.reports = append(g.reports, rep)
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /.verity/v1/scores", func(w http.ResponseWriter, r *http.Request) {
		doc, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			_, err = wasmclient.UnmarshalScores(doc)
		}
		if err != nil {
			http.Error(w, "bad scores", http.StatusBadRequest)
			return
		}
		g.mu.Lock()
		g.scores = append(g.scores, doc)
		g.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	g.srv = httptest.NewUnstartedServer(mux)
	g.srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	g.srv.Start()
	t.Cleanup(func() { cancel(); g.srv.Close() })
	return g
}

func (g *gatewayServer) setFault(f fault) {
	g.mu.Lock()
	g.fault = f
	g.mu.Unlock()
}

func (g *gatewayServer) setSite(s *site) {
	g.mu.Lock()
	g.site = s
	g.mu.Unlock()
}

func (g *gatewayServer) counts() (fallback, sessions int, reports []wasmclient.Report) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fallback, g.sessions, append([]wasmclient.Report(nil), g.reports...)
}

// env is a gateway, some nodes and a client wired together.
type env struct {
	site   *site
	gw     *gatewayServer
	nodes  []*node
	client *wasmclient.Client
}

func newEnv(t testing.TB, s *site, nNodes int, tweak func(*wasmclient.Config)) *env {
	t.Helper()
	e := &env{site: s}
	d := &tcpDialer{addrs: map[string]string{}}
	for i := 0; i < nNodes; i++ {
		n := startNode(t, "n"+string(rune('a'+i)), s)
		d.addrs[n.id] = n.addr
		e.nodes = append(e.nodes, n)
	}
	e.gw = startGateway(t, s, e.nodes...)
	origin := e.gw.srv.URL
	cfg := wasmclient.Config{
		Session:    &wasmclient.HTTPSessionLoader{Origin: origin},
		Transports: []wasmclient.Transport{&wasmclient.FramedTransport{Dialer: d}},
		Fallback:   &wasmclient.HTTPTransport{Origin: origin},
		Reporter:   &wasmclient.HTTPReporter{Origin: origin},
	}
	if tweak != nil {
		tweak(&cfg)
	}
	c, err := wasmclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	e.client = c
	return e
}

// carLen is the length of the CAR a healthy source sends for a whole file.
func (e *env) carLen(t testing.TB, path string) int64 {
	t.Helper()
	code, car := e.site.car("/ipfs/" + e.site.root.String() + "/" + path + "?format=car&dag-scope=entity")
	if code != 200 {
		t.Fatalf("car %s: status %d", path, code)
	}
	return int64(len(car))
}
