package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
)

// liar is a storage node that speaks the node protocol over WebTransport
// and relays an honest node's CAR streams, except that it flips a byte in
// the middle of the block named victim whenever it sends it. With bao set
// it speaks protocol version 2: to a client offering bao16 it sends the
// bao16 body, altered after encoding, as a node whose bytes are changed in
// flight would. With slices set it speaks protocol version 3 to a client
// offering bao16-slices, and lies about the victim when a range covers it
// in part (sliceAlter, sliceWhole).
type liar struct {
	ID     string
	Record noderecord.Signed

	victim   atomic.Pointer[cid.CID]
	bao      atomic.Bool
	slices   atomic.Int32 // sliceAlter, sliceWhole, or 0: not version 3
	upstream string       // honest node's HTTP base URL
	client   *http.Client
	corrupt  atomic.Int64
	baoSent  atomic.Int64 // responses sent as bao16 bodies
	sliced   atomic.Int64 // victim sections sent where a slice was due
	server   *webtransport.Server
	wg       sync.WaitGroup
}

// What a version-3 liar sends for the victim where the client expects the
// Bao slice of the part a range covers.
const (
	// sliceAlter: the slice, with a byte in its window changed (the
	// parents are the true block's).
	sliceAlter = 1 + iota
	// sliceWhole: the victim's whole, true, bao16 encoding instead.
	sliceWhole
)

func startLiar(t *testing.T, upstream string) *liar {
	t.Helper()
	l := &liar{upstream: strings.TrimRight(upstream, "/"), client: browser.NewHTTPClient(30 * time.Second)}

	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &certKey.PublicKey, certKey)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	l.server = &webtransport.Server{
		H3: &http3.Server{
			TLSConfig: http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: certKey}}}),
			Handler:   mux,
		},
		CheckOrigin: func(*http.Request) bool { return true },
	}
	webtransport.ConfigureHTTP3Server(l.server.H3)
	mux.HandleFunc("/verity/v1", func(w http.ResponseWriter, r *http.Request) {
		sess, err := l.server.Upgrade(w, r)
		if err != nil {
			return
		}
		for {
			str, err := sess.AcceptStream(sess.Context())
			if err != nil {
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.serve(sess.Context(), str)
			}()
		}
	})
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.server.Serve(udp)
	}()
	t.Cleanup(func() {
		l.server.Close()
		udp.Close()
		l.wg.Wait()
		l.client.CloseIdleConnections()
	})

	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(der)
	rec, err := noderecord.Sign(noderecord.Record{
		HTTP:         l.upstream,
		WebTransport: fmt.Sprintf("https://127.0.0.1:%d/verity/v1", udp.LocalAddr().(*net.UDPAddr).Port),
		CertHashes:   []noderecord.CertHash{{SHA256: hash[:], NotBefore: tmpl.NotBefore, NotAfter: tmpl.NotAfter}},
		Issued:       now.Add(-time.Minute),
		Expires:      now.Add(time.Hour),
	}, nodeKey)
	if err != nil {
		t.Fatal(err)
	}
	l.Record, l.ID = rec, rec.Record.NodeID
	return l
}

// serve answers one request stream: the honest node's CAR, with the victim
// block's bytes altered.
func (l *liar) serve(ctx context.Context, str *webtransport.Stream) {
	req, err := wire.ReadRequest(bufio.NewReader(str))
	if err != nil {
		str.CancelWrite(wire.CodeInternal)
		return
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, l.upstream+req.Target, nil)
	if err != nil {
		str.CancelWrite(wire.CodeInternal)
		return
	}
	hreq.Header.Set("Accept", "application/vnd.ipld.car")
	resp, err := l.client.Do(hreq)
	if err != nil {
		str.CancelWrite(wire.CodeInternal)
		return
	}
	defer resp.Body.Close()
	head := &wire.Response{Status: resp.StatusCode, Header: wire.Header{}}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		head.Header.Set("Content-Type", ct)
	}
	ok := resp.StatusCode == http.StatusOK
	useBao := l.bao.Load() && ok && req.BlockEncoding(wire.BlocksBao16) != ""
	var plan *verify.SlicePlan
	if l.slices.Load() != 0 && ok && req.BlockEncoding(wire.BlocksBao16Slices) != "" {
		useBao = true
		head.Header.Set(wire.HeaderBlocks, wire.BlocksBao16Slices)
		if vreq, err := verify.ParseTarget(req.Target); err == nil {
			plan = verify.NewSlicePlan(vreq)
		}
	} else if useBao {
		head.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
	}
	if useBao {
		l.baoSent.Add(1)
	}
	if _, err := head.WriteTo(str); err != nil {
		str.CancelWrite(wire.CodeInternal)
		return
	}
	if resp.StatusCode != http.StatusOK {
		io.Copy(str, io.LimitReader(resp.Body, wire.MaxErrorBody))
		str.Close()
		return
	}
	if err := l.relay(str, resp.Body, useBao, plan); err != nil {
		str.CancelWrite(wire.CodeInternal)
		return
	}
	str.Close()
}

func (l *liar) relay(w io.Writer, body io.Reader, useBao bool, plan *verify.SlicePlan) error {
	r, err := car.NewReader(body, car.Config{})
	if err != nil {
		return err
	}
	cw, err := car.NewWriter(w, r.Roots())
	if err != nil {
		return err
	}
	victim := l.victim.Load()
	for {
		c, data, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		var off, length uint64
		var slice bool
		if plan != nil {
			off, length, slice = plan.Section(c, data)
		}
		isVictim := victim != nil && c.Equal(*victim) && len(data) > 0
		if slice && car.BaoSection(c) {
			ob, _ := bao.AppendOutboard(nil, data)
			switch {
			case isVictim && l.slices.Load() == sliceWhole:
				data, _ = bao.Encode(nil, data)
				l.sliced.Add(1)
			case isVictim:
				// A byte in the middle of the window, in a group the
				// client verifies against the true block's parents.
				data = append([]byte(nil), data...)
				data[off+length/2] ^= 0xff
				l.corrupt.Add(1)
				l.sliced.Add(1)
				fallthrough
			default:
				data, err = bao.AppendSlice(nil, data, ob, off, length)
				if err != nil {
					return err
				}
			}
			if err := cw.PutRaw(c.Bytes(), data); err != nil {
				return err
			}
			continue
		}
		// The byte in the middle of the block, where it travels.
		at := len(data) / 2
		if useBao && car.BaoSection(c) {
			at = baoDataOffset(len(data), at)
			data, _ = bao.Encode(nil, data)
		}
		if isVictim {
			data = append([]byte(nil), data...)
			data[at] ^= 0xff
			l.corrupt.Add(1)
		}
		if err := cw.PutRaw(c.Bytes(), data); err != nil {
			return err
		}
	}
}

// baoDataOffset returns where byte pos of an n-byte block lies in the
// block's Bao encoding (pre-order: a parent, its left subtree, its right
// one).
func baoDataOffset(n, pos int) int {
	at, off := bao.HeaderSize, 0
	for n > bao.GroupSize {
		at += bao.ParentSize
		mid := 1
		for mid*2 < n {
			mid *= 2
		}
		if pos-off < mid {
			n = mid
			continue
		}
		at += int(bao.EncodedSize(uint64(mid))) - bao.HeaderSize // the left subtree
		off, n = off+mid, n-mid
	}
	return at + pos - off
}

// A node that sends a block whose bytes do not match its CID is caught by
// the worker: the page gets the correct bytes, finished from another
// source, and the worker reports the node for a bad block. This liar
// speaks protocol version 1 (it ignores the worker's bao16 offer).
func TestBadBlockFromNodeIsCaught(t *testing.T) { testBadBlockFromNode(t, false) }

// The same under protocol version 2: the liar sends bao16 bodies and alters
// a byte in the middle of a 256 KiB block. The worker has released the
// block's first half (its verified 16 KiB groups) when the altered group
// arrives; it rejects that group, and the body resumes inside the block
// from an honest node: the page still gets exactly the file's bytes.
func TestBadBlockFromBaoNodeIsCaught(t *testing.T) { testBadBlockFromNode(t, true) }

// liarFirst has e's page use a gateway whose sessions list l first, then
// the honest nodes.
func liarFirst(t *testing.T, e *env, l *liar) {
	t.Helper()
	nodes := gateway.StaticRecords(l.Record)
	for _, n := range e.net.Nodes() {
		nodes = append(nodes, n.Record)
	}
	e.useGateway(gateway.Config{Sites: e.net.Sites(), Nodes: nodes})
	if s := e.session(); s.Nodes[0].ID != l.ID {
		t.Fatalf("the session does not list the lying node first: %s", describe(s.Nodes))
	}
	e.controlled()
}

func testBadBlockFromNode(t *testing.T, useBao bool) {
	e := newEnv(t, envConfig{})
	big := largest(assets(e.files))
	honest := e.net.Nodes()[0]
	l := startLiar(t, honest.HTTPURL())
	l.bao.Store(useBao)
	victim := leaves(t, e, honest, big.Path)
	l.victim.Store(&victim[min(1, len(victim)-1)])

	liarFirst(t, e, l)

	// Small files come from the liar, unaltered.
	css := e.fetchFile(fileOf(t, e.files, "style.css"))
	if n, _ := css.Timing("node"); n != l.ID {
		t.Fatalf("/style.css came from %q, not from the lying node %s", n, l.ID)
	}

	gw0 := e.gatewayMetrics()
	res := e.fetchFile(big) // byte-equal: the altered block never reached the page
	t.Logf("/%s: Server-Timing %s", big.Path, res.Headers["server-timing"])
	if l.corrupt.Load() == 0 {
		t.Fatalf("the lying node never sent the altered block %s", l.victim.Load())
	}
	if sent := l.baoSent.Load(); useBao != (sent > 0) {
		t.Fatalf("the lying node sent %d bao16 bodies (bao16 %v)", sent, useBao)
	}

	badBlock := map[string]string{"node": l.ID, "reason": "bad-block"}
	err := testutil.Wait(10*time.Second, func() error {
		if e.gatewayMetrics().Sum("verity_gateway_node_reports_total", badBlock) > gw0.Sum("verity_gateway_node_reports_total", badBlock) {
			return nil
		}
		return errors.New("no new report")
	})
	if err != nil {
		t.Errorf("gateway verity_gateway_node_reports_total{node=%q,reason=\"bad-block\"} did not grow (%v): %s", l.ID, err, describe(e.gatewayMetrics().Select("verity_gateway_node_reports_total")))
	}
	reports, err := e.b.WorkerReports(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range reports {
		// The report names the altered block (the worker reports the
		// verifier's error).
		if r.Node == l.ID && r.Reason == "bad-block" && strings.Contains(r.Detail, l.victim.Load().String()) {
			found = true
		}
	}
	if !found {
		t.Errorf("verity-reports has no bad-block report for the lying node: %s", describe(reports))
	}
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := workerStat(stats, "/"+big.Path); !ok || r.Error != "" || r.Bytes != big.Size || r.Node == l.ID {
		t.Errorf("verity-stats for /%s = %+v (found %v): want %d bytes, no error, finished by a source other than the liar", big.Path, r, ok, big.Size)
	}
	if useBao {
		// The groups were checked by the worker's BLAKE3 SIMD module, the
		// altered one included (a whole 16 KiB group inside the block).
		sc, err := e.b.WorkerScores(e.ctx(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if sc.Blake3SIMDGroups == 0 {
			t.Errorf("the worker hashed no group with its BLAKE3 SIMD module")
		}
	}
}

// Under protocol version 3 a ranged request's partly covered leaves come
// as Bao slices. A liar that changes a byte inside the slice of a leaf the
// range covers from 37,856 bytes in is caught at that group (bad-block), a
// liar that sends the leaf's whole (true) encoding where the slice is due
// is refused before any byte of it is released (protocol): either way the
// page gets exactly the range's bytes, finished by an honest node.
func TestBadSliceFromNodeIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   int32
		reason string
	}{
		{"altered byte", sliceAlter, "bad-block"},
		{"whole block for a slice", sliceWhole, "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) { testBadSliceFromNode(t, tc.mode, tc.reason) })
	}
}

func testBadSliceFromNode(t *testing.T, mode int32, reason string) {
	e := newEnv(t, envConfig{})
	big := largest(assets(e.files))
	data, err := os.ReadFile(filepath.Join(e.dir, filepath.FromSlash(big.Path)))
	if err != nil {
		t.Fatal(err)
	}
	const from, to = 300000, 700000 // 37,856 bytes into the second leaf, into the third
	if len(data) <= to {
		t.Fatalf("/%s has %d bytes; the test needs more than %d", big.Path, len(data), to)
	}
	honest := e.net.Nodes()[0]
	l := startLiar(t, honest.HTTPURL())
	l.slices.Store(mode)
	victim := leaves(t, e, honest, big.Path)
	l.victim.Store(&victim[1])

	liarFirst(t, e, l)

	res, err := e.b.Fetch(e.ctx(60*time.Second), "/"+big.Path, &browser.FetchOptions{Cache: "no-store", Headers: map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", from, to)}})
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(data[from : to+1])
	if res.Status != http.StatusPartialContent || res.Error != "" || res.SHA256 != hex.EncodeToString(want[:]) {
		t.Fatalf("range %d-%d of /%s: status %d, %d bytes, body error %q, sha256 %s; want 206 and the file's bytes", from, to, big.Path, res.Status, res.Size, res.Error, res.SHA256)
	}
	t.Logf("range of /%s: Server-Timing %s", big.Path, res.Headers["server-timing"])
	if l.sliced.Load() == 0 {
		t.Fatalf("the lying node never sent the victim %s where a slice was due (%d bodies in a Bao encoding)", victim[1], l.baoSent.Load())
	}
	// The head named the liar, which answered first; the record names the
	// source that finished the body.
	stats, err := e.b.WorkerStats(e.ctx(10 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := workerStat(stats, "/"+big.Path); !ok || r.Error != "" || r.Bytes != to-from+1 || r.Node == l.ID {
		t.Errorf("verity-stats for the range of /%s = %+v (found %v): want %d bytes, no error, finished by a source other than the liar", big.Path, r, ok, to-from+1)
	}
	testutil.EventuallyErr(t, 10*time.Second, "a "+reason+" report for the lying node", func() error {
		reports, err := e.b.WorkerReports(e.ctx(10 * time.Second))
		if err != nil {
			return err
		}
		for _, r := range reports {
			if r.Node == l.ID && r.Reason == reason {
				return nil
			}
		}
		return fmt.Errorf("reports %s", describe(reports))
	})
}
