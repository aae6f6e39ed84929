// Package sitetest holds the fixtures the control plane's and the
// gateway's tests share: a small site with a multi-block file, written to
// disk and imported into real nodes, and signed node records.
package sitetest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/noderecord"
)

// ChunkSize is the importer's leaf size.
const ChunkSize = 256 << 10

// Files is the site the tests publish: an index with the loader, a
// stylesheet, a page in a directory, a six-leaf file whose last leaf is
// short, and a name with a space.
func Files() map[string][]byte {
	big := make([]byte, 5*ChunkSize+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"index.html":       []byte("<!doctype html><title>t</title><script src=\"/verity.js\" async></script><h1>home</h1>\n"),
		"style.css":        []byte("body { color: #123; }\n"),
		"about/index.html": []byte("<!doctype html><h1>about</h1>\n"),
		"media/big.bin":    big,
		"docs/a b.txt":     []byte("spaces in names\n"),
	}
}

// Write writes files under a new temporary directory and returns its path.
func Write(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "site")
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// Importer is what Import needs of a node (*node.Node).
type Importer interface {
	ImportCAR(ctx context.Context, r io.Reader) ([]cid.Cid, error)
	PinLocal(roots ...cid.Cid) error
}

// Import imports files into every node and returns the root CID. The
// roots are pinned as an operator's import is (verity node --car):
// otherwise a node's first reconciliation with a coordinator that placed
// nothing on it collects the blocks mid-test.
func Import[N Importer](t testing.TB, nodes []N, files map[string][]byte) string {
	t.Helper()
	var car bytes.Buffer
	root, err := importer.WriteCAR(t.Context(), Write(t, files), &car, importer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		roots, err := n.ImportCAR(t.Context(), bytes.NewReader(car.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.PinLocal(roots...); err != nil {
			t.Fatal(err)
		}
	}
	return root.String()
}

// Key is the Ed25519 key whose seed is seed followed by zeros.
func Key(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return ed25519.NewKeyFromSeed(s)
}

// RecordAt is a valid record of the node keyed by Key(seed) whose URLs are
// on host.
func RecordAt(t testing.TB, seed byte, host string) noderecord.Signed {
	t.Helper()
	now := time.Now()
	priv := Key(seed)
	pub := priv.Public().(ed25519.PublicKey)
	rec, err := noderecord.Sign(noderecord.Record{
		NodeID:       noderecord.NodeIDFromKey(pub),
		PublicKey:    pub,
		HTTP:         "http://" + host + ":4001",
		WebTransport: "https://" + host + ":4433/verity/v1",
		CertHashes:   []noderecord.CertHash{{SHA256: make([]byte, 32), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(13 * 24 * time.Hour)}},
		Issued:       now.Add(-time.Minute),
		Expires:      now.Add(time.Hour),
	}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}
