package devnet

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/importer"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/web"
)

// BenchmarkDeployToPublished measures a deploy of the demo site, from the
// upload reaching the gateway to the site serving the new root: the
// gateway's verification, placement on both nodes, their fetch, verify and
// pin, and the publish. Each iteration deploys a new version (the demo
// plus one changed file), so every one is placed and published afresh.
func BenchmarkDeployToPublished(b *testing.B) {
	dir := b.TempDir()
	d, err := New(b.Context(), Config{
		DataDir: dir,
		Listen:  "127.0.0.1:0",
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		cancel()
		<-done
		d.Close()
	}()
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := d.WaitReady(wctx); err != nil {
		b.Fatal(err)
	}
	site := filepath.Join(dir, "bench-site")
	if err := writeFS(site, web.Demo); err != nil {
		b.Fatal(err)
	}
	// The site source tells when a deploy is published: no polling adds
	// to what is measured.
	published := make(chan string, 1)
	d.Sites().WatchSites(func(s gateway.Site, _ string) {
		if s.Name == SiteName {
			select {
			case <-published: // only the latest root matters
			default:
			}
			published <- s.Root
		}
	})
	var size int64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(site, "version.txt"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			b.Fatal(err)
		}
		var car bytes.Buffer
		root, err := importer.WriteCAR(ctx, site, &car, importer.Options{})
		if err != nil {
			b.Fatal(err)
		}
		size = int64(car.Len())
		b.StartTimer()
		if _, err := d.Control().Deploy(ctx, SiteName, &car); err != nil {
			b.Fatal(err)
		}
		timeout := time.After(testutil.Scale(30 * time.Second))
		for got := ""; got != root.String(); {
			select {
			case got = <-published:
			case <-timeout:
				b.Fatalf("version %d not published", i)
			}
		}
	}
	b.SetBytes(size)
}
