package netem_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/verity-cdn/verity/e2e/netem"
	"github.com/verity-cdn/verity/internal/testutil"
)

// noLeaks fails the test if goroutines started during it outlive it. Call
// it first so its cleanup runs last.
func noLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		err := testutil.Wait(10*time.Second, func() error {
			if n := runtime.NumGoroutine(); n > before {
				return fmt.Errorf("%d goroutines after the test, %d before", n, before)
			}
			return nil
		})
		if err != nil {
			buf := make([]byte, 1<<16)
			t.Errorf("%v:\n%s", err, buf[:runtime.Stack(buf, true)])
		}
	})
}

// tcpEcho starts a TCP echo server that half-closes after echoing EOF.
func tcpEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	conns := map[net.Conn]bool{}
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
				_ = c.(*net.TCPConn).CloseWrite()
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newTCP(t *testing.T, cfg netem.Config) *netem.TCPProxy {
	p, err := netem.NewTCP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestTCPDelay(t *testing.T) {
	noLeaks(t)
	const up, down = 30 * time.Millisecond, 20 * time.Millisecond
	p := newTCP(t, netem.Config{Target: tcpEcho(t), Up: netem.Link{Delay: up}, Down: netem.Link{Delay: down}})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testutil.Scale(10 * time.Second)))
	b := make([]byte, 1)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
			t.Fatalf("echo: %v %v", b, err)
		}
		rtt := time.Since(start)
		t.Logf("round trip %d: %v", i, rtt)
		if rtt < up+down || rtt > up+down+2*time.Second {
			t.Fatalf("round trip %v, want at least %v", rtt, up+down)
		}
	}
}

func TestTCPIntegrity(t *testing.T) {
	noLeaks(t)
	p := newTCP(t, netem.Config{Target: tcpEcho(t),
		Up: netem.Link{Delay: 5 * time.Millisecond}, Down: netem.Link{Delay: 5 * time.Millisecond}, QueueBytes: 256 << 10})
	data := make([]byte, 8<<20)
	_, _ = rand.Read(data)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testutil.Scale(30 * time.Second)))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite() // the FIN travels too
		}
		werr <- err
	}()
	got, err := io.ReadAll(c) // ends at the echo's FIN
	if err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("echoed %d bytes differ from the %d sent", len(got), len(data))
	}
}

func TestTCPRate(t *testing.T) {
	noLeaks(t)
	const rate = 4 << 20 // bytes/s
	p := newTCP(t, netem.Config{Target: tcpEcho(t), Down: netem.Link{Rate: rate}})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(testutil.Scale(30 * time.Second)))
	data := make([]byte, 2<<20)
	start := time.Now()
	go func() {
		_, _ = c.Write(data)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("%d bytes, %v", n, err)
	}
	el := time.Since(start)
	t.Logf("%d bytes at a %d B/s cap in %v", n, rate, el)
	// The first chunk leaves at once: at least (n - chunk) / rate.
	if min := time.Duration(float64(n-32<<10) / rate * float64(time.Second)); el < min {
		t.Fatalf("took %v, want at least %v", el, min)
	}
}

// TestTCPCloseDropsConnections: Close ends live connections and every
// goroutine, even with data queued and a peer that does not read.
func TestTCPCloseDropsConnections(t *testing.T) {
	noLeaks(t)
	p := newTCP(t, netem.Config{Target: tcpEcho(t), Up: netem.Link{Delay: time.Hour}})
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "data queued in the proxy", func() bool { return p.QueuedUpForTest() > 0 })
	done := make(chan struct{})
	go func() { _ = p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(testutil.Scale(5 * time.Second)):
		t.Fatal("Close did not return")
	}
	_ = p.Close() // idempotent
	_ = c.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("the client connection is still open after Close")
	}
}

// udpEcho starts a UDP echo server.
func udpEcho(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(buf[:n], addr)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return pc.LocalAddr().String()
}

func newUDP(t *testing.T, cfg netem.Config) *netem.UDPProxy {
	p, err := netem.NewUDP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// TestUDP: datagrams keep their boundaries and contents, each client gets
// its own replies, and every round trip takes at least both delays.
func TestUDP(t *testing.T) {
	noLeaks(t)
	const up, down = 20 * time.Millisecond, 15 * time.Millisecond
	p := newUDP(t, netem.Config{Target: udpEcho(t), Up: netem.Link{Delay: up}, Down: netem.Link{Delay: down}})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for client := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("udp", p.Addr())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			buf := make([]byte, 1<<16)
			for _, size := range []int{1, 1200, 1500, 9000, 60000} {
				msg := make([]byte, size)
				_, _ = rand.Read(msg)
				msg[0] = byte(client)
				start := time.Now()
				if _, err := c.Write(msg); err != nil {
					errs <- err
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(testutil.Scale(5 * time.Second)))
				n, err := c.Read(buf)
				if err != nil {
					errs <- err
					return
				}
				if rtt := time.Since(start); rtt < up+down {
					errs <- errors.New("round trip " + rtt.String() + " shorter than the delays")
					return
				}
				if !bytes.Equal(buf[:n], msg) {
					errs <- errors.New("a datagram came back changed, merged or split")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestUDPQueueBound: a burst larger than the queue is partly dropped, not
// buffered without bound.
func TestUDPQueueBound(t *testing.T) {
	noLeaks(t)
	p := newUDP(t, netem.Config{Target: udpEcho(t), Up: netem.Link{Delay: 200 * time.Millisecond}, QueueBytes: 10 * 1000})
	c, err := net.Dial("udp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 50 {
		if _, err := c.Write(make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, "a 50 kB burst into a 10 kB queue to drop something", func() bool { return p.Dropped() > 0 })
}

// TestQUICThroughUDP: a QUIC connection (what WebTransport runs on) works
// through the UDP forwarder, with the delay added.
func TestQUICThroughUDP(t *testing.T) {
	noLeaks(t)
	tlsConf := selfSigned(t)
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		defer conn.CloseWithError(0, "")
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		_, _ = io.Copy(s, s)
		_ = s.Close()
		select { // until the client closes, or the test ends
		case <-conn.Context().Done():
		case <-ctx.Done():
		}
	}()
	t.Cleanup(func() { cancel(); _ = ln.Close(); <-srvDone })

	const delay = 10 * time.Millisecond
	p := newUDP(t, netem.Config{Target: ln.Addr().String(), Up: netem.Link{Delay: delay}, Down: netem.Link{Delay: delay}})
	start := time.Now()
	conn, err := quic.DialAddr(ctx, p.Addr(), &tls.Config{RootCAs: tlsConf.RootCAs, ServerName: "127.0.0.1", NextProtos: []string{"netem-test"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	if hs := time.Since(start); hs < 2*delay {
		t.Errorf("QUIC handshake took %v through a %v each-way link", hs, delay)
	}
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	go func() {
		_, _ = s.Write(data)
		_ = s.Close()
	}()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("QUIC echo: %d bytes, %v", len(got), err)
	}
	t.Logf("QUIC handshake and 1 MiB echo in %v", time.Since(start))
}

func selfSigned(t *testing.T) *tls.Config {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		NextProtos:   []string{"netem-test"},
	}
}
