package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunNode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runNode(ctx, []string{"--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0", "--log-level", "warn"}, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var httpURL string
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "http: "); ok {
			httpURL = v
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if httpURL == "" {
		t.Fatalf("no http URL printed: %v", <-done)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(httpURL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	c.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runNode: %v", err)
	}
}

func TestRunNodeBadFlags(t *testing.T) {
	if err := runNode(context.Background(), []string{"--public-host", "example.com", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--webtransport", "127.0.0.1:0"}, io.Discard, io.Discard); err == nil {
		t.Fatal("non-IP public host accepted")
	}
	if err := runNode(context.Background(), []string{"extra"}, io.Discard, io.Discard); err == nil {
		t.Fatal("extra argument accepted")
	}
}
