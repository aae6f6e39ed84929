package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/blockstore"
	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/multiformats/go-multihash"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// fixture is a small UnixFS directory built with the content model's
// settings: {"a.txt": small, "big.bin": 5 chunks}.
type fixture struct {
	root   cid.Cid
	big    []byte
	small  []byte
	car    []byte
	blocks map[cid.Cid][]byte
}

func buildFixture(t testing.TB) *fixture {
	t.Helper()
	return buildFixtureSize(t, 4*256<<10+1000)
}

// buildFixtureSize is buildFixture with a big.bin of bigSize bytes.
func buildFixtureSize(t testing.TB, bigSize int) *fixture {
	t.Helper()
	ctx := context.Background()
	bs := blockstore.NewBlockstore(dssync.MutexWrap(ds.NewMapDatastore()))
	dserv := merkledag.NewDAGService(blockservice.New(bs, offline.Exchange(bs)))
	prefix, err := merkledag.PrefixForCidVersion(1)
	if err != nil {
		t.Fatal(err)
	}
	prefix.MhType = multihash.BLAKE3
	prefix.MhLength = -1

	addFile := func(data []byte) cid.Cid {
		params := helpers.DagBuilderParams{Dagserv: dserv, RawLeaves: true, Maxlinks: 174, CidBuilder: &prefix}
		db, err := params.New(chunker.NewSizeSplitter(bytes.NewReader(data), 256<<10))
		if err != nil {
			t.Fatal(err)
		}
		nd, err := balanced.Layout(db)
		if err != nil {
			t.Fatal(err)
		}
		return nd.Cid()
	}
	f := &fixture{small: []byte("hello verity\n"), big: make([]byte, bigSize)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range f.big {
		f.big[i] = byte(rng.Uint32())
	}
	dir, err := uio.NewDirectory(dserv, uio.WithCidBuilder(&prefix))
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]cid.Cid{"a.txt": addFile(f.small), "big.bin": addFile(f.big)} {
		nd, err := dserv.Get(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := dir.AddChild(ctx, name, nd); err != nil {
			t.Fatal(err)
		}
	}
	root, err := dir.GetNode()
	if err != nil {
		t.Fatal(err)
	}
	if err := dserv.Add(ctx, root); err != nil {
		t.Fatal(err)
	}
	f.root = root.Cid()
	f.blocks = map[cid.Cid][]byte{}
	keys, err := bs.AllKeysChan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var list []cid.Cid
	for k := range keys {
		list = append(list, k)
	}
	for _, k := range list {
		b, err := bs.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		f.blocks[b.Cid()] = b.RawData()
	}
	f.car = writeCARv1(f.root, list, f.blocks)
	return f
}

// writeCARv1 encodes a CARv1: a dag-cbor header {roots, version} and one
// section per block.
func writeCARv1(root cid.Cid, order []cid.Cid, blocks map[cid.Cid][]byte) []byte {
	var b bytes.Buffer
	rb := append([]byte{0}, root.Bytes()...)
	var hdr bytes.Buffer
	hdr.Write([]byte{0xa2, 0x65})
	hdr.WriteString("roots")
	hdr.Write([]byte{0x81, 0xd8, 0x2a, 0x58, byte(len(rb))})
	hdr.Write(rb)
	hdr.WriteByte(0x67)
	hdr.WriteString("version")
	hdr.WriteByte(0x01)
	b.Write(binary.AppendUvarint(nil, uint64(hdr.Len())))
	b.Write(hdr.Bytes())
	for _, c := range order {
		data := blocks[c]
		// Blocks are keyed by the CID the blockstore returned; write the
		// CID form the DAG uses.
		cb := c.Bytes()
		b.Write(binary.AppendUvarint(nil, uint64(len(cb)+len(data))))
		b.Write(cb)
		b.Write(data)
	}
	return b.Bytes()
}

func newNode(t testing.TB, cfg node.Config) *node.Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	n, err := node.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// servedFixture returns the fixture and a node, with the default config,
// that holds it and serves.
func servedFixture(ctx context.Context, t testing.TB) (*fixture, *node.Node) {
	t.Helper()
	f := buildFixture(t)
	n := newNode(t, node.Config{})
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	return f, n
}

func runNode(t testing.TB, n *node.Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// dialWT opens a WebTransport session to url, accepting only a server
// certificate whose SHA-256 is one of hashes.
func dialWT(ctx context.Context, url string, hashes ...[]byte) (*webtransport.Session, func(), error) {
	tr := &webtransport.Transport{
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // replaced by the hash pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("no certificate")
				}
				h := sha256.Sum256(raw[0])
				for _, want := range hashes {
					if bytes.Equal(h[:], want) {
						return nil
					}
				}
				return errors.New("certificate hash not pinned")
			},
		},
		QUICConfig: &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true, MaxIdleTimeout: 10 * time.Second},
	}
	_, sess, err := tr.Dial(ctx, url, nil)
	if err != nil {
		tr.Close()
		return nil, nil, err
	}
	return sess, func() {
		sess.CloseWithError(0, "")
		tr.Close()
	}, nil
}

// wtGet sends one request on a new stream and reads the whole response.
func wtGet(ctx context.Context, sess *webtransport.Session, target, accept string) (*wire.Response, []byte, error) {
	req := &wire.Request{Target: target, Header: wire.Header{}}
	if accept != "" {
		req.Header["accept"] = accept
	}
	return wtExchange(ctx, sess, req)
}

func readWireResponse(r io.Reader) (*wire.Response, []byte, error) {
	br := bufio.NewReader(r)
	resp, err := wire.ReadResponse(br)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(br)
	return resp, body, err
}

// removeFullLeaves deletes count full-size (256 KiB) raw leaves of f from
// n's store, so a traversal of big.bin fails after its first blocks.
func removeFullLeaves(t *testing.T, n *node.Node, f *fixture, count int) {
	t.Helper()
	removed := 0
	for c, data := range f.blocks {
		if c.Prefix().Codec != cid.Raw || len(data) != 256<<10 {
			continue
		}
		p, _ := n.BlockPath(c)
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if removed++; removed == count {
			return
		}
	}
}

// testOperator creates an operator on c's bus and returns its credential,
// for nodes joining c.
func testOperator(t testing.TB, c *coordinator.Coordinator) string {
	t.Helper()
	tok, err := c.CreateOperator(t.Context(), "test-"+strconv.FormatUint(rand.Uint64(), 36))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startChild runs this test binary again as a child process running only
// the test run names, with env added to its environment, and returns its
// standard output and kill, which kills it (SIGKILL) and waits for it;
// kill may be called more than once.
func startChild(t *testing.T, run string, env ...string) (io.ReadCloser, func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	return out, func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			go io.Copy(io.Discard, out)
			_ = cmd.Wait()
		}
	}
}

// dialNode opens a WebTransport session to n, pinned to its current
// certificate, closed when the test ends.
func dialNode(ctx context.Context, t testing.TB, n *node.Node) *webtransport.Session {
	t.Helper()
	sess, closeSess, err := dialWT(ctx, n.WebTransportURL(), n.Record().Record.CertHashes[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeSess)
	return sess
}
