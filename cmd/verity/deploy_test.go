package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/testutil"
)

// The CLI path end to end: a gateway and two nodes as commands, a site
// created with the admin token, deployed from a directory (published once
// both nodes hold it), its history listed and rolled back.
func TestDeployAndSitesCommands(t *testing.T) {
	const admin = cliAdmin
	gw := startCLINetwork(t)
	run := func(cmd func(context.Context, []string, io.Writer, io.Writer) error, args ...string) (string, error) {
		t.Helper()
		return runCmd(t, cmd, args...)
	}
	token, err := run(runSites, "create", "blog", "--gateway", gw, "--admin-token", admin)
	if err != nil || !strings.HasPrefix(token, "vdt_") {
		t.Fatalf("sites create: %q %v", token, err)
	}
	if _, err := run(runSites, "create", "blog", "--gateway", gw, "--admin-token", admin); err == nil {
		t.Fatal("creating an existing site succeeded")
	}

	deploy := func(content string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := run(runDeploy, dir, "--site", "blog", "--gateway", gw, "--token", token)
		if err != nil {
			t.Fatalf("deploy: %v", err)
		}
		lines := strings.Split(out, "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "http://blog.localhost:") {
			t.Fatalf("deploy printed %q", out)
		}
		return lines[0]
	}
	r1 := deploy("<h1>one</h1>")
	r2 := deploy("<h1>two</h1>")
	if r1 == r2 {
		t.Fatal("two contents, one root")
	}
	// Served by the gateway on the site's origin.
	req, _ := http.NewRequest(http.MethodGet, gw+"/", nil)
	req.Host = "blog.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "<h1>two</h1>" {
		t.Fatalf("served %q", body)
	}

	hist, err := run(runSites, "history", "blog", "--gateway", gw, "--token", token)
	if err != nil || !strings.Contains(hist, r1) || !strings.Contains(hist, r2+"  (current)") {
		t.Fatalf("history: %v\n%s", err, hist)
	}
	out, err := run(runSites, "rollback", "blog", "--gateway", gw, "--token", token)
	if err != nil || !strings.Contains(out, "version 3, root "+r1) {
		t.Fatalf("rollback: %q %v", out, err)
	}
	list, err := run(runSites, "list", "--gateway", gw, "--admin-token", admin)
	if err != nil || !strings.Contains(list, "blog") || !strings.Contains(list, r1) {
		t.Fatalf("list: %v\n%s", err, list)
	}
	if _, err := run(runSites, "list", "--gateway", gw, "--token", token); err == nil {
		t.Fatal("list with a site token succeeded")
	}
	// A wrong token is refused before anything is built or uploaded.
	var wrongErr bytes.Buffer
	if err := runDeploy(t.Context(), []string{t.TempDir(), "--site", "blog", "--gateway", gw, "--token", "vdt_wrong"}, io.Discard, &wrongErr); err == nil ||
		!strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "nothing uploaded") || strings.Contains(wrongErr.String(), "building CAR") {
		t.Fatalf("deploy with a wrong token: %v\n%s", err, wrongErr.String())
	}

	// For CI: one JSON object on stdout, warnings for pages without the
	// loader and a missing index.html, no progress bar off a terminal.
	ci := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ci, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"docs/a.html": "<h1>a</h1>", "docs/b.html": `<script src="/verity.js" async></script>`} {
		if err := os.WriteFile(filepath.Join(ci, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ciToken, err := run(runSites, "create", "ci", "--gateway", gw, "--admin-token", admin)
	if err != nil {
		t.Fatal(err)
	}
	var jout, jerr bytes.Buffer
	jctx, jcancel := context.WithTimeout(t.Context(), testutil.Scale(60*time.Second))
	defer jcancel()
	if err := runDeploy(jctx, []string{ci, "--site", "ci", "--gateway", gw, "--token", ciToken, "--json"}, &jout, &jerr); err != nil {
		t.Fatalf("deploy --json: %v\n%s", err, jerr.String())
	}
	var got deployOutput
	if err := json.Unmarshal(jout.Bytes(), &got); err != nil || got.Site != "ci" || got.Root == "" || !strings.HasPrefix(got.URL, "http://ci.localhost:") || got.Replicas != 2 {
		t.Fatalf("deploy --json printed %q (%v)", jout.String(), err)
	}
	if len(got.Warnings) != 2 || !strings.Contains(got.Warnings[0], "no index.html") || !strings.Contains(got.Warnings[1], "docs/a.html") || strings.Contains(got.Warnings[1], "docs/b.html") {
		t.Fatalf("warnings %q", got.Warnings)
	}
	if strings.Contains(jerr.String(), "\r") {
		t.Fatalf("a progress bar off a terminal: %q", jerr.String())
	}

	// The event feed: what happened, then what happens.
	evs, err := run(runEvents, "--gateway", gw, "--admin-token", admin, "--last", "1000", "--type", "site.published", "--type", "site.rolled_back")
	blogPublished := 0
	for _, l := range strings.Split(evs, "\n") {
		if strings.Contains(l, "site.published") && strings.Contains(l, `"site":"blog"`) {
			blogPublished++
		}
	}
	if err != nil || blogPublished != 2 || !strings.Contains(evs, r2) || !strings.Contains(evs, "site.rolled_back") {
		t.Fatalf("events: %v\n%s", err, evs)
	}
	if _, err := run(runEvents, "--gateway", gw, "--admin-token", token); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("events with a site token: %v", err)
	}
	fctx, cancel := context.WithTimeout(t.Context(), testutil.Scale(30*time.Second))
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runEvents(fctx, []string{"--gateway", gw, "--admin-token", admin, "--last", "1000", "--follow", "--json", "--type", "site.rolled_back"}, pw, io.Discard)
		pw.Close()
	}()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The stored rollback arrives first (the follower is connected); a
	// rollback made after that arrives next.
	nextLine := func() string {
		t.Helper()
		select {
		case l := <-lines:
			return l
		case <-fctx.Done():
			t.Fatal("no event reached the follower")
		}
		return ""
	}
	first := nextLine()
	if !strings.Contains(first, `"type":"site.rolled_back"`) || !strings.Contains(first, r1) {
		t.Fatalf("replayed event %q", first)
	}
	if _, err := run(runSites, "rollback", "blog", "--gateway", gw, "--token", token); err != nil {
		t.Fatal(err)
	}
	if l := nextLine(); !strings.Contains(l, `"type":"site.rolled_back"`) || l == first {
		t.Fatalf("followed event %q", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("events --follow: %v", err)
	}
}
