package wasmclient

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/wire"
)

// A response head larger than the exchange's read buffer (a header line
// longer than it) is read whole, and the body after it intact.
func TestFramedExchangeHeadLargerThanBuffer(t *testing.T) {
	client, node := net.Pipe()
	defer client.Close()
	long := strings.Repeat("x", headBufSize+1000)
	body := strings.Repeat("body", 10_000)
	go func() {
		defer node.Close()
		if _, err := wire.ReadRequest(bufio.NewReader(node)); err != nil {
			return
		}
		resp := wire.Response{Status: 200, Header: wire.Header{"x-long": long}}
		if _, err := resp.WriteTo(node); err != nil {
			return
		}
		_, _ = io.WriteString(node, body)
	}()
	r, blocks, err := framedExchange(client, "/ipfs/bafkqaaa?format=car&dag-scope=entity", nil)
	if err != nil {
		t.Fatal(err)
	}
	if blocks != "" {
		t.Errorf("block encoding %q", blocks)
	}
	got, err := io.ReadAll(r)
	if err != nil || string(got) != body {
		t.Fatalf("body: %d bytes (want %d), %v", len(got), len(body), err)
	}
}
