package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/control"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/testutil"
)

// `verity sites webhooks` end to end against `verity gateway`: an
// endpoint added with the site's token gets a refused deploy's event,
// signed with the secret printed once; list and log never print the
// secret; redeliver sends it again; remove ends it.
func TestSitesWebhooksCommands(t *testing.T) {
	gw := startCommand(t, runGateway, []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--admin-token", cliAdmin, "--allow-private-addrs"}, "gateway: ")
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, b)
		mu.Unlock()
	}))
	defer rcv.Close()
	deliveries := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }

	token, err := runCmd(t, runSites, "create", "blog", "--gateway", gw, "--admin-token", cliAdmin)
	if err != nil {
		t.Fatal(err)
	}
	site := []string{"--gateway", gw, "--token", token}
	out, err := runCmd(t, runSites, append([]string{"webhooks", "add", "blog", rcv.URL + "/hook", "--events", "site.deploy_failed,site.published"}, site...)...)
	lines := strings.Split(out, "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "wh_") || !strings.HasPrefix(lines[1], "vws_") {
		t.Fatalf("webhooks add: %q %v", out, err)
	}
	id, secret := lines[0], lines[1]
	if _, err := runCmd(t, runSites, append([]string{"webhooks", "add", "blog", "http://127.0.0.1:1/", "--events", "node.joined"}, site...)...); err == nil {
		t.Fatal("a webhook for node.joined was added")
	}

	req, _ := http.NewRequest(http.MethodPost, gw+"/v1/sites/blog/deploy", strings.NewReader("not a CAR"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Eventually(t, 20*time.Second, "the delivery", func() bool { return deliveries() == 1 })
	mu.Lock()
	h, body := got[0].Header, bodies[0]
	mu.Unlock()
	if h.Get("Verity-Signature") != control.SignWebhook(secret, h.Get("Verity-Timestamp"), body) || h.Get("Verity-Event-Type") != "site.deploy_failed" {
		t.Fatalf("delivery headers %v", h)
	}

	list, err := runCmd(t, runSites, append([]string{"webhooks", "list", "blog"}, site...)...)
	if err != nil || !strings.Contains(list, id) || !strings.Contains(list, rcv.URL+"/hook") || strings.Contains(list, secret) {
		t.Fatalf("webhooks list: %v\n%s", err, list)
	}
	var log api.WebhookLog
	testutil.Eventually(t, 20*time.Second, "the attempt logged", func() bool {
		out, err := runCmd(t, runSites, append([]string{"webhooks", "log", "blog", id, "--json"}, site...)...)
		if strings.Contains(out, secret) {
			t.Fatalf("the log prints the secret: %s", out)
		}
		return err == nil && json.Unmarshal([]byte(out), &log) == nil && len(log.Attempts) == 1
	})
	if a := log.Attempts[0]; a.Status != 200 || a.Type != "site.deploy_failed" || a.Event != h.Get("Verity-Event-Id") {
		t.Fatalf("logged %+v", a)
	}
	table, err := runCmd(t, runSites, append([]string{"webhooks", "log", "blog", id}, site...)...)
	if err != nil || !strings.Contains(table, log.Attempts[0].Event) || !strings.Contains(table, "200") {
		t.Fatalf("webhooks log: %v\n%s", err, table)
	}

	if _, err := runCmd(t, runSites, append([]string{"webhooks", "redeliver", "blog", id, log.Attempts[0].Event}, site...)...); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, "the redelivery", func() bool { return deliveries() == 2 })
	mu.Lock()
	again := bodies[1]
	mu.Unlock()
	if !bytes.Equal(again, body) {
		t.Fatalf("redelivered %s, first %s", again, body)
	}

	other, err := runCmd(t, runSites, "create", "other", "--gateway", gw, "--admin-token", cliAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, runSites, "webhooks", "remove", "blog", id, "--gateway", gw, "--token", other); err == nil {
		t.Fatal("another site's token removed the webhook")
	}
	if _, err := runCmd(t, runSites, append([]string{"webhooks", "remove", "blog", id}, site...)...); err != nil {
		t.Fatal(err)
	}
	if list, _ := runCmd(t, runSites, append([]string{"webhooks", "list", "blog"}, site...)...); strings.Contains(list, id) {
		t.Fatalf("listed after remove:\n%s", list)
	}
}

// A delivery that failed before `verity gateway` stopped is made by the
// gateway started again on the same data directory.
func TestWebhookDeliveredAfterGatewayRestart(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--listen", "127.0.0.1:0", "--admin-token", cliAdmin, "--allow-private-addrs"}
	var mu sync.Mutex
	up := false // the receiver answers 503 until the gateway has stopped
	var answered []int
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		status := http.StatusServiceUnavailable
		if up {
			status = http.StatusOK
		}
		answered = append(answered, status)
		mu.Unlock()
		w.WriteHeader(status)
	}))
	defer rcv.Close()
	answers := func() []int { mu.Lock(); defer mu.Unlock(); return append([]int(nil), answered...) }

	gw, stop := startStoppable(t, runGateway, args, "gateway: ")
	token, err := runCmd(t, runSites, "create", "blog", "--gateway", gw, "--admin-token", cliAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, runSites, "webhooks", "add", "blog", rcv.URL, "--gateway", gw, "--token", token); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, gw+"/v1/sites/blog/deploy", strings.NewReader("not a CAR"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	testutil.Eventually(t, 20*time.Second, "the first, failed attempt", func() bool { return len(answers()) > 0 })
	// Stop once the attempt is logged: an attempt the gateway was
	// stopping during is made again by the next one and not logged.
	var firstLog api.WebhookLog
	hookID := func() string {
		out, err := runCmd(t, runSites, "webhooks", "list", "blog", "--gateway", gw, "--token", token, "--json")
		var hooks []api.Webhook
		if err != nil || json.Unmarshal([]byte(out), &hooks) != nil || len(hooks) != 1 {
			t.Fatalf("list: %v\n%s", err, out)
		}
		return hooks[0].ID
	}()
	testutil.Eventually(t, 20*time.Second, "the failed attempt logged", func() bool {
		out, err := runCmd(t, runSites, "webhooks", "log", "blog", hookID, "--json", "--gateway", gw, "--token", token)
		return err == nil && json.Unmarshal([]byte(out), &firstLog) == nil && len(firstLog.Attempts) > 0
	})
	stop()
	mu.Lock()
	up = true
	mu.Unlock()

	gw, _ = startStoppable(t, runGateway, args, "gateway: ")
	// The retry is due 10 s after the failure (the default backoff).
	testutil.Eventually(t, 60*time.Second, "the delivery after the restart", func() bool {
		a := answers()
		return a[len(a)-1] == http.StatusOK
	})
	out, err := runCmd(t, runSites, "webhooks", "list", "blog", "--gateway", gw, "--token", token, "--json")
	var hooks []api.Webhook
	if err != nil || json.Unmarshal([]byte(out), &hooks) != nil || len(hooks) != 1 {
		t.Fatalf("list after the restart: %v\n%s", err, out)
	}
	var log api.WebhookLog
	testutil.Eventually(t, 20*time.Second, "the success logged", func() bool {
		out, err := runCmd(t, runSites, "webhooks", "log", "blog", hooks[0].ID, "--json", "--gateway", gw, "--token", token)
		return err == nil && json.Unmarshal([]byte(out), &log) == nil && len(log.Attempts) >= 2 && log.Attempts[0].Status == 200
	})
	if last := log.Attempts[len(log.Attempts)-1]; last.Status != 503 || last.Attempt != 1 {
		t.Fatalf("the first attempt logged as %+v", last)
	}
}

// startStoppable is startCommand with a stop that ends the command and
// waits for it (also run at cleanup; idempotent).
func startStoppable(t *testing.T, run func(context.Context, []string, io.Writer, io.Writer) error, args []string, prefix string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%v: %v", args, err)
			}
		})
	}
	t.Cleanup(stop)
	sc := bufio.NewScanner(pr)
	v := ""
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			v = s
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if v == "" {
		stop()
		t.Fatalf("%v: no %q line printed", args, prefix)
	}
	return v, stop
}
