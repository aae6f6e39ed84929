//go:build !js

package wasmclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
	"github.com/verity-cdn/verity/wasmclient"
)

// warmupFixture builds the node's answer the worker's warm-up request
// reads: the VERITY/1 head and the bao16 body of the entity CAR of w.
func warmupFixture(t *testing.T) (root string, stream []byte) {
	t.Helper()
	s := buildSiteChunked(t, 32<<10, fileSpec{path: "w", data: make([]byte, wasmclient.WarmupSizeForTest)})
	code, plain := s.car("/ipfs/" + s.root.String() + wasmclient.WarmupPathForTest + "?format=car&dag-scope=entity")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	var out bytes.Buffer
	head := wire.Response{Status: 200, Header: wire.Header{"content-type": "application/vnd.ipld.car", wire.HeaderBlocks: wire.BlocksBao16}}
	if _, err := head.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	bw := car.NewBaoWriter(&out, 0)
	if _, err := bw.Write(plain); err != nil {
		t.Fatal(err)
	}
	if err := bw.Close(); err != nil {
		t.Fatal(err)
	}
	return s.root.String(), out.Bytes()
}

// TestWarmupFixture checks the warm-up answer kept in the wasm against
// the one a node would send today; with VERITY_UPDATE_FIXTURES=1 it
// rewrites it (then set warmupRoot to the root it prints).
func TestWarmupFixture(t *testing.T) {
	root, stream := warmupFixture(t)
	if os.Getenv("VERITY_UPDATE_FIXTURES") == "1" {
		if err := os.WriteFile("warmup.bin", stream, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("root %s", root)
		return
	}
	if root != wasmclient.WarmupRootForTest {
		t.Errorf("root %s, want warmupRoot %s", root, wasmclient.WarmupRootForTest)
	}
	if !bytes.Equal(*wasmclient.WarmupStreamForTest, stream) {
		t.Error("warmup.bin differs from what a node sends (run with VERITY_UPDATE_FIXTURES=1)")
	}
}

// TestWarmupFetchVerifies: the warm-up request goes through the client's
// verification: its answer is served whole, and a changed byte of it is
// caught, in a block or in a 16 KiB group.
func TestWarmupFetchVerifies(t *testing.T) {
	ctx := context.Background()
	fetch := func(stream []byte) ([]byte, error) {
		c, err := wasmclient.NewWarmupClientForTest(stream)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		resp, err := c.Fetch(ctx, wasmclient.FetchRequest{Path: wasmclient.WarmupPathForTest})
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.Status != 200 || resp.ContentLength != int64(wasmclient.WarmupSizeForTest) {
			t.Fatalf("status %d, length %d", resp.Status, resp.ContentLength)
		}
		return io.ReadAll(resp.Body)
	}
	good := *wasmclient.WarmupStreamForTest
	got, err := fetch(good)
	if err != nil || !bytes.Equal(got, make([]byte, wasmclient.WarmupSizeForTest)) {
		t.Fatalf("warm-up fetch: %d bytes, %v", len(got), err)
	}
	for _, at := range []int{len(good) / 3, len(good) - 100} {
		bad := bytes.Clone(good)
		bad[at] ^= 1
		got, err := fetch(bad)
		if err == nil {
			t.Errorf("byte %d changed: read %d bytes, no error", at, len(got))
			continue
		}
		if !errors.Is(err, verify.ErrHashMismatch) {
			var fe *wasmclient.FetchError
			if !errors.As(err, &fe) {
				t.Errorf("byte %d changed: %v", at, err)
			}
		}
	}
}
