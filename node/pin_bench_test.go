package node_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/node"
)

// benchTree writes a deterministic tree of about size bytes into dir:
// files of mixed sizes (1 KiB to 4 MiB) in a few directories.
func benchTree(b *testing.B, dir string, size int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{1 << 10, 16 << 10, 100 << 10, 300 << 10, 1 << 20, 4 << 20}
	var total int64
	for i := 0; total < size; i++ {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", i%8))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		data := make([]byte, sizes[i%len(sizes)])
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%05d.bin", i)), data, 0o644); err != nil {
			b.Fatal(err)
		}
		total += int64(len(data))
	}
}

// BenchmarkPin pins a 64 MiB tree of mixed file sizes from an HTTP URL,
// as a pin order does, into a fresh data directory each time: fetch,
// verification against the CIDs and the whole-DAG check, storage, and the
// durable pin record. Bytes are the CAR's.
func BenchmarkPin(b *testing.B) {
	dir := b.TempDir()
	benchTree(b, dir, 64<<20)
	var buf bytes.Buffer
	root, err := importer.WriteCAR(b.Context(), dir, &buf, importer.Options{})
	if err != nil {
		b.Fatal(err)
	}
	carBytes := buf.Bytes()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.ipld.car")
		w.Write(carBytes)
	}))
	defer srv.Close()
	b.SetBytes(int64(len(carBytes)))
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		n, err := node.New(node.Config{DataDir: b.TempDir(), DisableWebTransport: true, WebRTC: node.WebRTCConfig{Disabled: true}})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := n.Pin(b.Context(), nodeproto.Pin{Root: root.String(), CAR: srv.URL + "/site.car"}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		n.Close()
		b.StartTimer()
	}
	_ = cid.Undef
}
