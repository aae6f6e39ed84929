package gateway

import (
	"bytes"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// dialSmallBuffer connects to the gateway with a tiny receive buffer, so a
// client that does not read makes the server's writes block quickly.
func dialSmallBuffer(t *testing.T, tg *testGateway) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", tg.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// A client that stops reading a large response is cut off; one that reads
// gets every byte.
func TestStalledReaderIsCutOff(t *testing.T) {
	assets := testAssets()
	big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
	assets["dist/verity.wasm"] = &fstest.MapFile{Data: big}
	start := func(stall time.Duration) (tg *testGateway, request string) {
		tg = startGateway(t, Config{
			Sites:             NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
			Nodes:             StaticRecords(),
			Assets:            assets,
			WriteStallTimeout: stall,
		})
		_, sw := tg.get(t, tg.SiteURL("demo")+"verity-sw.js")
		wasmURL := regexp.MustCompile(`/\.verity/wasm/[0-9a-f]{16}\.wasm`).FindString(string(sw))
		if wasmURL == "" {
			t.Fatalf("no wasm URL in %q", sw)
		}
		host := strings.TrimSuffix(strings.TrimPrefix(tg.SiteURL("demo"), "http://"), "/")
		return tg, "GET " + wasmURL + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	}

	// Reading promptly: the whole body arrives. The stall timeout is
	// generous here: a reader the machine's load holds back for a moment
	// fills its receive window, and TCP's zero-window probes, backing off
	// from 200 ms, can then hold a write for seconds.
	tg, request := start(testutil.Scale(5 * time.Second))
	conn, err := net.Dial("tcp", tg.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(testutil.Scale(60 * time.Second)))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil || !bytes.HasSuffix(all, big[len(big)-1024:]) || len(all) < len(big) {
		t.Fatalf("reading client: %d bytes, %v", len(all), err)
	}

	// Not reading at all, with a receive buffer far smaller than the
	// body: once a write has waited for the (short) stall timeout the
	// server gives up, which ends the request, so it is counted. Only
	// then does the client read, and what is left is far short of the
	// body. Nothing here races the clock: the client reads nothing until
	// the server has given up.
	tg, request = start(100 * time.Millisecond)
	conn = dialSmallBuffer(t, tg)
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "the server to give up on the client that does not read", func() bool {
		return tg.counter(t, "verity_gateway_requests_total", "kind", kindWasm) > 0
	})
	_ = conn.SetDeadline(time.Now().Add(testutil.Scale(30 * time.Second)))
	got, _ := io.ReadAll(conn)
	if len(got) >= len(big) {
		t.Fatalf("stalled client still got the whole %d-byte body", len(got))
	}
}

// A request body that trickles in is cut off by ReadTimeout.
func TestSlowRequestBodyIsCutOff(t *testing.T) {
	tg := startGateway(t, Config{
		Sites:       NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:       StaticRecords(),
		ReadTimeout: 300 * time.Millisecond,
	})
	conn, err := net.Dial("tcp", tg.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	host := strings.TrimSuffix(strings.TrimPrefix(tg.SiteURL("demo"), "http://"), "/")
	if _, err := io.WriteString(conn, "POST /.verity/v1/report HTTP/1.1\r\nHost: "+host+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// One byte every 50 ms or more would take 50 s or more; the server must
	// close long before. Each round writes a byte, then waits 50 ms for the
	// server's answer: that wait paces the trickle.
	testutil.Eventually(t, 20*time.Second, "the server to cut off a trickling request body", func() bool {
		if _, err := conn.Write([]byte(" ")); err != nil {
			return true // closed by the server
		}
		_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [512]byte
		n, err := conn.Read(b[:])
		return n > 0 || (err != nil && !isTimeoutErr(err)) // answered (an error status) or closed
	})
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
