//go:build !js

package verify_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/unixfs"
	"github.com/verity-cdn/verity/internal/verify"
)

// TestHAMTIsSharded makes sure TestGatewayHAMT exercises real shards: the
// lookup of one name crosses more than one shard level.
func TestHAMTIsSharded(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 300; i++ {
		writeFile(t, filepath.Join(dir, "big", fmt.Sprintf("entry-%04d.txt", i)), []byte("x"))
	}
	f := newFixture(t, dir, importer.Options{HAMTShardingSize: 1024})
	req := verify.Request{Root: f.root, Path: []string{"big", "entry-0007.txt"}}
	_, secs := blocksOf(t, f.fetch(req))
	shards := 0
	for _, s := range secs {
		n, err := unixfs.DecodeNode(s.data)
		if err != nil || !n.HasData {
			continue
		}
		if fs, err := unixfs.DecodeData(n.Data); err == nil && fs.Type == unixfs.THAMTShard {
			shards++
		}
	}
	if shards < 2 {
		t.Fatalf("%d HAMT shards on the lookup path, want ≥ 2", shards)
	}
	// The whole directory as entity: all shards are preloaded.
	req = verify.Request{Root: f.root, Path: []string{"big"}}
	_, secs = blocksOf(t, f.fetch(req))
	if len(secs) < 3 {
		t.Fatalf("%d blocks for the HAMT entity", len(secs))
	}
}
