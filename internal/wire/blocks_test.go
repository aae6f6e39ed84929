package wire

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// Heads as each version of the client and of the server writes them.
const (
	oldRequest  = "VERITY/1 GET /ipfs/bafy?format=car&dag-scope=entity\r\naccept: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\n\r\n"
	newRequest  = "VERITY/1 GET /ipfs/bafy?format=car&dag-scope=entity\r\naccept: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\nverity-blocks: bao16\r\n\r\n"
	oldResponse = "VERITY/1 200 OK\r\ncontent-type: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\n\r\n"
	newResponse = "VERITY/1 200 OK\r\ncontent-type: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\nverity-blocks: bao16\r\n\r\n"
)

// TestNewClientWritesANewRequest: what a client that accepts bao16 writes.
func TestNewClientWritesANewRequest(t *testing.T) {
	req := Request{Target: "/ipfs/bafy?format=car&dag-scope=entity", Header: Header{
		"accept":     "application/vnd.ipld.car; version=1; order=dfs; dups=y",
		HeaderBlocks: BlocksBao16,
	}}
	var b bytes.Buffer
	if _, err := req.WriteTo(&b); err != nil || b.String() != newRequest {
		t.Fatalf("%q, %v", b.String(), err)
	}
}

// TestNegotiation covers the four pairs of client and server versions: an
// old server reads a new request like any other (it ignores the unknown
// field) and answers a plain CAR; a new server answers bao16 only to a
// client that offered it.
func TestNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name      string
		request   string
		newServer bool
		want      string // the body's encoding
	}{
		{"old client, old server", oldRequest, false, ""},
		{"new client, old server", newRequest, false, ""},
		{"old client, new server", oldRequest, true, ""},
		{"new client, new server", newRequest, true, BlocksBao16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := ReadRequest(bufio.NewReader(strings.NewReader(tc.request)))
			if err != nil {
				t.Fatal(err)
			}
			var enc string
			if tc.newServer {
				enc = req.BlockEncoding(BlocksBao16)
			} else {
				enc = req.BlockEncoding() // supports nothing but the CAR
			}
			resp := &Response{Status: 200, Header: Header{"content-type": "application/vnd.ipld.car; version=1; order=dfs; dups=y"}}
			if enc != "" {
				resp.Header.Set(HeaderBlocks, enc)
			}
			var b bytes.Buffer
			if _, err := resp.WriteTo(&b); err != nil {
				t.Fatal(err)
			}
			wantHead := oldResponse
			if tc.want != "" {
				wantHead = newResponse
			}
			if b.String() != wantHead {
				t.Fatalf("response head %q, want %q", b.String(), wantHead)
			}
			got, err := ReadResponse(bufio.NewReader(&b))
			if err != nil {
				t.Fatal(err)
			}
			if got.BlockEncoding() != tc.want {
				t.Fatalf("body encoding %q, want %q", got.BlockEncoding(), tc.want)
			}
		})
	}
}

func TestBlockEncodingList(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  string
	}{
		{"", ""},
		{"bao16", "bao16"},
		{" BAO16 ", "bao16"},
		{"bao64, bao16", "bao16"},
		{"bao64,,zstd", ""},
		{"bao16x", ""},
	} {
		req := &Request{Header: Header{}}
		if tc.field != "" {
			req.Header.Set(HeaderBlocks, tc.field)
		}
		if got := req.BlockEncoding(BlocksBao16); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.field, got, tc.want)
		}
	}
}
