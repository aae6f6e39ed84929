package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/webtransport-go"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/node"
)

// The serve benchmark: what a node spends serving a 32 MiB file the way
// the worker fetches it (wasmclient's parallel fetch): 16 streams of one
// 2 MiB segment each (entity-bytes), serveBenchConc at a time, on one
// WebTransport session over loopback, with or without bao16, with or
// without a voucher and receipts. The client runs in a child process
// (this test binary again, TestServeBenchClient), so the benchmark's
// allocations and its cpu-ms/MiB (this process's user+system CPU time,
// getrusage) are the node's, and a coordinator's (idle but for
// settlements) in the paid case.
const (
	serveBenchFile    = 32 << 20
	serveBenchSegment = 2 << 20
	serveBenchConc    = 4
	serveBenchEnv     = "VERITY_SERVE_BENCH_CLIENT"
)

// serveBenchClient is the child's configuration, in serveBenchEnv.
type serveBenchClient struct {
	URL      string
	CertHash []byte
	Targets  []string
	Bao      bool
	Voucher  string // base64 of the voucher's binary form; "" unpaid
	Seed     []byte // the voucher's session key seed
	Node     string // the node's ID, to pay
}

// BenchmarkServe: ns/op and MB/s are the wall time of one 32 MiB fetch
// (16 segments); B/op, allocs/op and cpu-ms/MiB are the node's.
//
//	go test -run '^$' -bench BenchmarkServe -benchtime 20x -count 6 ./node
func BenchmarkServe(b *testing.B) {
	fx := buildFixtureSize(b, serveBenchFile)
	for _, bc := range []struct {
		name      string
		bao, paid bool
	}{
		{"car", false, false},
		{"bao16", true, false},
		{"bao16-paid", true, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n *node.Node
			cfg := serveBenchClient{Bao: bc.bao}
			if bc.paid {
				pn := newPayNetFixture(b, fx, node.PaymentConfig{}, 1<<50)
				n = pn.node
				cfg.Voucher, cfg.Seed = benchVoucher(b, pn.gwKey, n.ID())
				cfg.Node = n.ID()
			} else {
				n = newNode(b, node.Config{})
				if _, err := n.ImportCAR(b.Context(), bytes.NewReader(fx.car)); err != nil {
					b.Fatal(err)
				}
				runNode(b, n)
			}
			cfg.URL = n.WebTransportURL()
			cfg.CertHash = n.Record().Record.CertHashes[0].SHA256
			root, err := cid.Parse(fx.root.String())
			if err != nil {
				b.Fatal(err)
			}
			for off := int64(0); off < serveBenchFile; off += serveBenchSegment {
				r := verify.Request{Root: root, Path: []string{"big.bin"}, Range: &verify.ByteRange{From: off, To: off + serveBenchSegment - 1}}
				cfg.Targets = append(cfg.Targets, r.Target())
			}
			checkServeBench(b, n, fx, root, cfg)
			c := startBenchClient(b, cfg)
			c.fetch(b) // a warm-up: the session, the store's pages
			b.SetBytes(serveBenchFile)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for range b.N {
				c.fetch(b)
			}
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N*serveBenchFile>>20), "cpu-ms/MiB")
		})
	}
}

// checkServeBench fetches each segment once in this process, unpaid, and
// verifies it, as the benchmark's client does not.
func checkServeBench(t testing.TB, n *node.Node, fx *fixture, root cid.CID, cfg serveBenchClient) {
	ctx := t.Context()
	sess, closeSess, err := dialWT(ctx, cfg.URL, cfg.CertHash)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()
	for i, target := range cfg.Targets {
		req := &wire.Request{Target: target, Header: wire.Header{"accept": carAccept}}
		if cfg.Bao {
			req.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
		}
		resp, body, err := wtExchange(ctx, sess, req)
		if err != nil || resp.Status != 200 || (resp.BlockEncoding() == wire.BlocksBao16) != cfg.Bao {
			t.Fatalf("segment %d: %v, %+v", i, err, resp)
		}
		off := int64(i) * serveBenchSegment
		vreq := verify.Request{Root: root, Path: []string{"big.bin"}, Range: &verify.ByteRange{From: off, To: off + serveBenchSegment - 1}}
		got, err := io.ReadAll(verify.NewReader(bytes.NewReader(body), vreq, verify.Options{Bao: cfg.Bao}))
		if err != nil || !bytes.Equal(got, fx.big[off:off+serveBenchSegment]) {
			t.Fatalf("segment %d: %d bytes verified, %v", i, len(got), err)
		}
	}
}

// benchVoucher signs a voucher for n with a budget no benchmark spends
// and returns it with its session key's seed.
func benchVoucher(t testing.TB, gwKey ed25519.PrivateKey, nodeID string) (string, []byte) {
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(seed)})
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: testAccount, Session: s.SessionKey(), Budget: 1 << 50, NodeCap: 1 << 50,
		Nodes: []payment.NodeTag{payment.TagOf(mustNodeKey(t, nodeID))}, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	_, _ = rand.Read(v.Nonce[:])
	if err := v.Sign(gwKey); err != nil {
		t.Fatal(err)
	}
	enc, err := v.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(enc), seed
}

// processCPU is this process's user and system CPU time.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchClient is the child process fetching on request.
type benchClient struct {
	in  io.WriteCloser
	out *bufio.Reader
}

// startBenchClient starts the child; it is killed when t ends.
func startBenchClient(t testing.TB, cfg serveBenchClient) *benchClient {
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeBenchClient$")
	cmd.Env = append(os.Environ(), serveBenchEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close() // the child ends when its input does
		done := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, out); _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return &benchClient{in: in, out: bufio.NewReader(out)}
}

// fetch has the child fetch the file once.
func (c *benchClient) fetch(t testing.TB) {
	if _, err := io.WriteString(c.in, "fetch\n"); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := c.out.ReadString('\n')
		if err != nil {
			t.Fatalf("bench client: %v", err)
		}
		res, ok := strings.CutPrefix(strings.TrimSpace(line), "serve-bench: ")
		if !ok {
			continue // the test framework's lines
		}
		if n, err := strconv.ParseInt(res, 10, 64); err != nil || n != serveBenchFile {
			t.Fatalf("bench client: %s", res)
		}
		return
	}
}

// TestServeBenchClient is BenchmarkServe's client, run only as its child:
// for each line "fetch" on its input it fetches the segments and prints
// "serve-bench: " and the bytes of raw blocks received, or the error.
func TestServeBenchClient(t *testing.T) {
	js := os.Getenv(serveBenchEnv)
	if js == "" {
		t.Skip("BenchmarkServe's client")
	}
	var cfg serveBenchClient
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sess, closeSess, err := dialWT(ctx, cfg.URL, cfg.CertHash)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()
	var pay *benchPayer
	if cfg.Voucher != "" {
		if pay, err = newBenchPayer(cfg); err != nil {
			t.Fatal(err)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		total, err := benchFetch(ctx, sess, cfg, pay)
		if err != nil {
			fmt.Printf("serve-bench: %v\n", err)
			continue
		}
		fmt.Printf("serve-bench: %d\n", total)
	}
}

// benchPayer signs the child's receipts.
type benchPayer struct {
	s       *payment.Signer
	node    payment.NodeKey
	voucher string
}

func newBenchPayer(cfg serveBenchClient) (*benchPayer, error) {
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(cfg.Seed)})
	if err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(cfg.Voucher)
	if err != nil {
		return nil, err
	}
	var v payment.Voucher
	if err := v.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	if err := s.SetVoucher(v); err != nil {
		return nil, err
	}
	nk, err := payment.ParseNodeID(cfg.Node)
	if err != nil {
		return nil, err
	}
	return &benchPayer{s: s, node: nk, voucher: cfg.Voucher}, nil
}

// benchFetch fetches every target, serveBenchConc streams at a time, and
// returns the bytes of raw blocks received.
func benchFetch(ctx context.Context, sess *webtransport.Session, cfg serveBenchClient, pay *benchPayer) (int64, error) {
	var (
		mu    sync.Mutex
		total int64
		errs  []error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	for range serveBenchConc {
		wg.Go(func() {
			for target := range next {
				n, err := benchSegment(ctx, sess, target, cfg.Bao, pay)
				mu.Lock()
				total += n
				if err != nil {
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		})
	}
	for _, target := range cfg.Targets {
		next <- target
	}
	close(next)
	wg.Wait()
	return total, errors.Join(errs...)
}

// benchSegment fetches one segment on a new stream, reading its sections
// without verifying them (the client's own work is not what is measured;
// checkServeBench verifies what the node sends), paying for each block
// as the worker does, and returns the bytes of its raw blocks.
func benchSegment(ctx context.Context, sess *webtransport.Session, target string, isBao bool, pay *benchPayer) (int64, error) {
	str, err := sess.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	defer str.CancelRead(0)
	req := &wire.Request{Target: target, Header: wire.Header{"accept": carAccept}}
	if isBao {
		req.Header.Set(wire.HeaderBlocks, wire.BlocksBao16)
	}
	if pay != nil {
		req.Header.Set(wire.HeaderVoucher, pay.voucher)
	}
	if _, err := req.WriteTo(str); err != nil {
		return 0, err
	}
	if pay == nil {
		if err := str.Close(); err != nil {
			return 0, err
		}
	}
	send := func(r payment.Receipt, signed bool, err error) error {
		if err != nil || !signed {
			return err
		}
		b, _ := r.MarshalBinary()
		_, err = str.Write(b)
		return err
	}
	br := bufio.NewReaderSize(str, 64<<10)
	resp, err := wire.ReadResponse(br)
	if err != nil {
		return 0, err
	}
	if err := resp.Err(br); err != nil {
		return 0, err
	}
	cr, err := car.NewReader(br, car.Config{})
	if err != nil {
		return 0, err
	}
	var raw int64
	var hdr [bao.HeaderSize]byte
	for {
		c, size, err := cr.NextSection()
		if err == io.EOF {
			break
		}
		if err != nil {
			return raw, err
		}
		p := cr.Payload()
		n := uint64(size)
		if isBao && car.BaoSection(c) {
			if _, err := io.ReadFull(p, hdr[:]); err != nil {
				return raw, err
			}
			n, _ = bao.ReadHeader(bytes.NewReader(hdr[:]))
		}
		if _, err := io.Copy(io.Discard, p); err != nil {
			return raw, err
		}
		if c.Codec == cid.CodecRaw {
			raw += int64(n)
		}
		if pay != nil {
			if err := send(pay.s.Verified(pay.node, n)); err != nil {
				return raw, err
			}
		}
	}
	if pay != nil {
		if err := send(pay.s.Flush(pay.node)); err != nil {
			return raw, err
		}
		_ = str.Close()
	}
	return raw, nil
}
