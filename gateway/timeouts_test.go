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
	tg := startGateway(t, Config{
		Sites:             NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:             StaticRecords(),
		Assets:            assets,
		WriteStallTimeout: 500 * time.Millisecond,
	})
	_, sw := tg.get(t, tg.SiteURL("demo")+"verity-sw.js")
	wasmURL := regexp.MustCompile(`/\.verity/wasm/[0-9a-f]{16}\.wasm`).FindString(string(sw))
	if wasmURL == "" {
		t.Fatalf("no wasm URL in %q", sw)
	}
	host := strings.TrimSuffix(strings.TrimPrefix(tg.SiteURL("demo"), "http://"), "/")
	request := "GET " + wasmURL + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"

	// Reading promptly: the whole body arrives.
	conn := dialSmallBuffer(t, tg)
	_ = conn.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	all, err := io.ReadAll(conn)
	if err != nil || !bytes.HasSuffix(all, big[len(big)-1024:]) || len(all) < len(big) {
		t.Fatalf("reading client: %d bytes, %v", len(all), err)
	}

	// Not reading for well past the stall timeout: the server gives up, so
	// what is left to read is far short of the body.
	conn = dialSmallBuffer(t, tg)
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
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
	// One byte every 50 ms would take 50 s; the server must close long before.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := conn.Write([]byte(" ")); err != nil {
			return // closed by the server
		}
		time.Sleep(50 * time.Millisecond)
		_ = conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		var b [512]byte
		if n, err := conn.Read(b[:]); n > 0 || (err != nil && !isTimeoutErr(err)) {
			return // answered (an error status) or closed
		}
	}
	t.Fatal("a trickling request body was never cut off")
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
