//go:build !js

package wasmclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/wasmclient"
)

// Resolve names the CID a path's file has under the current root (the one
// Fetch sends as its ETag) from the parent directory's verified blocks:
// one directory request per directory, none for the files.
func TestResolve(t *testing.T) {
	e := newEnv(t, demoSite(t), 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range []string{"/style.css", "/index.html", "/", "/big.bin", "/docs/", "/docs/a%20b.txt"} {
		res, err := e.client.Resolve(ctx, p)
		if err != nil {
			t.Fatalf("Resolve(%q): %v", p, err)
		}
		r, err := get(t, e.client, wasmclient.FetchRequest{Path: p})
		if err != nil || r.err != nil {
			t.Fatalf("Fetch(%q): %v %v", p, err, r.err)
		}
		if `"`+res.CID+`"` != r.resp.ETag || res.ContentType != r.resp.ContentType || res.Root != e.site.root.String() {
			t.Errorf("Resolve(%q) = %+v; Fetch sent ETag %s, Content-Type %q under root %s", p, res, r.resp.ETag, r.resp.ContentType, e.site.root)
		}
	}
	for _, p := range []string{"/missing.txt", "/docs/missing", "/style.css/x"} {
		if res, err := e.client.Resolve(ctx, p); !errors.Is(err, wasmclient.ErrNotFound) {
			t.Errorf("Resolve(%q) = %+v, %v; want ErrNotFound", p, res, err)
		}
	}
	// Each directory was fetched once (the root and /docs).
	dirs := map[string]int{}
	for _, tg := range e.nodes[0].targets() {
		if strings.Contains(tg, "dag-scope=entity") && !strings.Contains(tg, ".") {
			dirs[tg]++
		}
	}
	for tg, n := range dirs {
		if n != 1 {
			t.Errorf("directory %s requested %d times, want once", tg, n)
		}
	}
	if len(dirs) < 2 {
		t.Errorf("directory requests %v: want the root's and /docs'", dirs)
	}
}
