package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// TestRunCloseNoLeak checks that Run returns on cancel and leaves no
// goroutine behind once its connections are gone.
func TestRunCloseNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	g, err := New(Config{
		Listen: "127.0.0.1:0",
		Sites:  NewStaticSites(map[string]string{"demo": testCID(t, "r")}),
		Nodes:  StaticNodes{},
		Assets: testAssets(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	tr := &http.Transport{}
	c := &http.Client{Transport: tr}
	req, _ := http.NewRequest(http.MethodGet, g.URL()+"/verity.js", nil)
	req.Host = "demo.localhost"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	tr.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	err = testutil.Wait(10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines after Close, %d before", n, before)
		}
		return nil
	})
	if err != nil {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%v:\n%s", err, strings.TrimSpace(string(buf)))
	}
}
