package control

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil"
)

// hookReceiver is a webhook endpoint on loopback that answers the
// statuses it is given in turn, then 200, and keeps what it was sent.
type hookReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	answers []int
	got     []delivery
}

type delivery struct {
	header http.Header
	body   []byte
	status int
}

func newHookReceiver(t *testing.T, answers ...int) *hookReceiver {
	h := &hookReceiver{answers: answers}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		status := http.StatusOK
		if len(h.answers) > 0 {
			status, h.answers = h.answers[0], h.answers[1:]
		}
		h.got = append(h.got, delivery{r.Header.Clone(), b, status})
		h.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) deliveries() []delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]delivery(nil), h.got...)
}

func (h *hookReceiver) setAnswers(answers ...int) {
	h.mu.Lock()
	h.answers = answers
	h.mu.Unlock()
}

// checkSignature is the receiver's side of docs/deploying-a-site.md
// "Webhooks", written from the document: the HMAC-SHA256 of timestamp,
// ".", body.
func checkSignature(secret string, d delivery) bool {
	ts := d.header.Get("Verity-Timestamp")
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(d.body)
	want := "v1=" + hex.EncodeToString(m.Sum(nil))
	return ts != "" && hmac.Equal([]byte(want), []byte(d.header.Get("Verity-Signature")))
}

func webhookStack(t *testing.T, bus *events.Bus, cfg Config) *testStack {
	t.Helper()
	tg, _ := webhookStackStop(t, bus, cfg)
	return tg
}

// webhookStackStop is webhookStack with the function that stops it.
func webhookStackStop(t *testing.T, bus *events.Bus, cfg Config) (*testStack, func()) {
	t.Helper()
	cfg.AdminToken = testAdmin
	if cfg.WebhookRetryMin == 0 {
		cfg.WebhookRetryMin, cfg.WebhookRetryMax = 20*time.Millisecond, 100*time.Millisecond
	}
	return startStack(t, bus, cfg, gateway.Config{})
}

func (tg *testGateway) addWebhook(t *testing.T, site, token, url string, types ...string) api.Webhook {
	t.Helper()
	body, _ := json.Marshal(api.AddWebhook{URL: url, Events: types})
	var hook api.Webhook
	tg.apiJSON(t, http.MethodPost, "/v1/sites/"+site+"/webhooks", token, string(body), http.StatusCreated, &hook)
	if !strings.HasPrefix(hook.Secret, webhookSecretPrefix) || hook.ID == "" {
		t.Fatalf("added webhook %+v", hook)
	}
	return hook
}

func (tg *testGateway) webhookLog(t *testing.T, site, token, id string) api.WebhookLog {
	t.Helper()
	var log api.WebhookLog
	got := tg.apiJSON(t, http.MethodGet, "/v1/sites/"+site+"/webhooks/"+id+"/log", token, "", http.StatusOK, &log)
	if strings.Contains(got, webhookSecretPrefix) {
		t.Fatalf("the log shows a secret: %s", got)
	}
	return log
}

// A receiver on loopback gets every event of the site it subscribed to,
// signed with the secret it was shown once; list and log never show it.
func TestWebhookDeliversSignedEvents(t *testing.T) {
	bus := openBus(t, "gw-hooks")
	tg := webhookStack(t, bus, Config{AllowPrivateAddrs: true})
	token := tg.createSite(t, "blog")
	rcv := newHookReceiver(t)
	hook := tg.addWebhook(t, "blog", token, rcv.URL+"/hook")
	if len(hook.Events) != len(WebhookTypes) {
		t.Fatalf("subscribed to %v, want every type", hook.Events)
	}

	car, root := siteCAR(t, map[string][]byte{"index.html": []byte("<h1>hi</h1>")})
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, car); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, []byte("not a CAR")); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad deploy: %d %s", resp.StatusCode, body)
	}
	pcar, proot := siteCAR(t, map[string][]byte{"index.html": []byte("<h1>next</h1>")})
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy?preview=1", token, pcar); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("preview deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "three deliveries", func() bool { return len(rcv.deliveries()) == 3 })
	seen := map[events.Type]events.Event{}
	var preview events.SiteDeployed
	for _, d := range rcv.deliveries() {
		if !checkSignature(hook.Secret, d) {
			t.Fatalf("signature %q does not verify", d.header.Get("Verity-Signature"))
		}
		ev, err := events.ParseEvent(d.body)
		if err != nil {
			t.Fatal(err)
		}
		if d.header.Get("Verity-Event-Id") != ev.ID || d.header.Get("Verity-Event-Type") != string(ev.Type) {
			t.Fatalf("headers %v for event %s %s", d.header, ev.ID, ev.Type)
		}
		if ts, err := strconv.ParseInt(d.header.Get("Verity-Timestamp"), 10, 64); err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Hour {
			t.Fatalf("timestamp %q", d.header.Get("Verity-Timestamp"))
		}
		var p events.SiteDeployed
		if ev.Type == events.TypeSiteDeployed && ev.Decode(&p) == nil && p.Preview {
			preview = p
			continue
		}
		seen[ev.Type] = ev
	}
	if preview.Root != proot || preview.Site != "blog" {
		t.Fatalf("the preview's site.deployed: %+v", preview)
	}
	var dep events.SiteDeployed
	if err := seen[events.TypeSiteDeployed].Decode(&dep); err != nil || dep.Site != "blog" || dep.Root != root || dep.Preview {
		t.Fatalf("site.deployed %+v %v", dep, err)
	}
	var failed events.DeployFailed
	if err := seen[events.TypeDeployFailed].Decode(&failed); err != nil || failed.Site != "blog" || failed.Code != "malformed" {
		t.Fatalf("site.deploy_failed %+v %v", failed, err)
	}

	// A body changed in transit no longer verifies.
	d := rcv.deliveries()[0]
	d.body = append([]byte(nil), d.body...)
	d.body[len(d.body)/2] ^= 1
	if checkSignature(hook.Secret, d) {
		t.Fatal("a tampered body verifies")
	}

	list := tg.apiJSON(t, http.MethodGet, "/v1/sites/blog/webhooks", token, "", http.StatusOK, nil)
	if !strings.Contains(list, hook.ID) || strings.Contains(list, webhookSecretPrefix) || strings.Contains(list, `"secret"`) {
		t.Fatalf("list %s", list)
	}
	waitFor(t, "three logged attempts", func() bool { return len(tg.webhookLog(t, "blog", token, hook.ID).Attempts) == 3 })
	for _, a := range tg.webhookLog(t, "blog", token, hook.ID).Attempts {
		if a.Status != 200 || a.Attempt != 1 || a.NextRetry != nil || a.Error != "" {
			t.Fatalf("attempt %+v", a)
		}
	}
	// The stored record holds the secret sealed, not in clear.
	kv, _ := bus.KV(events.BucketWebhooks)
	e, err := kv.Get(t.Context(), webhookKey("blog", hook.ID))
	if err != nil || strings.Contains(string(e.Value()), hook.Secret) || strings.Contains(string(e.Value()), hook.Secret[len(webhookSecretPrefix):]) {
		t.Fatalf("stored %s (%v)", e.Value(), err)
	}

	tg.apiJSON(t, http.MethodDelete, "/v1/sites/blog/webhooks/"+hook.ID, token, "", http.StatusNoContent, nil)
	tg.apiJSON(t, http.MethodGet, "/v1/sites/blog/webhooks/"+hook.ID+"/log", token, "", http.StatusNotFound, nil)
}

// An endpoint that answers 500 twice gets the event on the third try, and
// the log shows all three; one that never accepts is given up after
// WebhookAttempts; a logged event can be delivered again.
func TestWebhookRetriesAndRedelivers(t *testing.T) {
	bus := openBus(t, "gw-hooks")
	tg := webhookStack(t, bus, Config{AllowPrivateAddrs: true, WebhookAttempts: 3})
	token := tg.createSite(t, "blog")
	flaky := newHookReceiver(t, 500, 500)
	down := newHookReceiver(t, 503, 503, 503, 503, 503)
	hook := tg.addWebhook(t, "blog", token, flaky.URL, string(events.TypeDeployFailed))
	dead := tg.addWebhook(t, "blog", token, down.URL, string(events.TypeDeployFailed))

	tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, []byte("not a CAR"))
	waitFor(t, "the third attempt", func() bool { return len(flaky.deliveries()) == 3 })
	var log api.WebhookLog
	waitFor(t, "three logged attempts", func() bool {
		log = tg.webhookLog(t, "blog", token, hook.ID)
		return len(log.Attempts) == 3
	})
	for i, want := range []struct{ attempt, status int }{{3, 200}, {2, 500}, {1, 500}} {
		a := log.Attempts[i]
		if a.Attempt != want.attempt || a.Status != want.status || (a.NextRetry == nil) != (want.status == 200) {
			t.Fatalf("attempt %d: %+v, want %+v", i, a, want)
		}
		if want.status == 500 && (a.Error == "" || !a.NextRetry.After(a.Time)) {
			t.Fatalf("failed attempt %+v", a)
		}
	}
	event := log.Attempts[0].Event
	for i, d := range flaky.deliveries() {
		if !checkSignature(hook.Secret, d) || d.header.Get("Verity-Event-Id") != event || d.header.Get("Verity-Delivery-Attempt") != strconv.Itoa(i+1) {
			t.Fatalf("delivery %d: %v", i, d.header)
		}
	}

	waitFor(t, "the dead endpoint given up", func() bool {
		l := tg.webhookLog(t, "blog", token, dead.ID)
		return len(l.Attempts) == 3 && l.Attempts[0].NextRetry == nil
	})

	tg.apiJSON(t, http.MethodPost, "/v1/sites/blog/webhooks/"+hook.ID+"/redeliver", token, `{"event":"`+event+`"}`, http.StatusAccepted, nil)
	waitFor(t, "the redelivery", func() bool { return len(flaky.deliveries()) == 4 })
	if d := flaky.deliveries()[3]; d.header.Get("Verity-Event-Id") != event || !checkSignature(hook.Secret, d) {
		t.Fatalf("redelivery %v", d.header)
	}
	waitFor(t, "the redelivery logged", func() bool {
		l := tg.webhookLog(t, "blog", token, hook.ID)
		return len(l.Attempts) == 4 && l.Attempts[0].Redelivery && l.Attempts[0].Status == 200
	})
	tg.apiJSON(t, http.MethodPost, "/v1/sites/blog/webhooks/"+hook.ID+"/redeliver", token, `{"event":"nosuch"}`, http.StatusNotFound, nil)
	if got := len(down.deliveries()); got != 3 {
		t.Fatalf("the dead endpoint got %d requests, want 3", got)
	}
}

// A delivery still pending when the gateway stops is made after it
// starts again on the same store.
func TestWebhookDeliveredAfterRestart(t *testing.T) {
	store, data := t.TempDir(), t.TempDir()
	open := func() *events.Bus {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b, err := events.Open(ctx, events.Config{StoreDir: store, Name: "gw-restart", Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	}
	cfg := Config{AllowPrivateAddrs: true, DataDir: data, WebhookTimeout: time.Second,
		WebhookRetryMin: 200 * time.Millisecond, WebhookRetryMax: 200 * time.Millisecond}
	bus := open()
	rcv := newHookReceiver(t, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503, 503)
	tg, stop := webhookStackStop(t, bus, cfg)
	token := tg.createSite(t, "blog")
	hook := tg.addWebhook(t, "blog", token, rcv.URL)
	tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, []byte("not a CAR"))
	waitFor(t, "a failed attempt", func() bool { return len(rcv.deliveries()) > 0 })

	stop()
	bus.Close()
	failed := len(rcv.deliveries())
	rcv.setAnswers() // 200 from now on

	bus = open()
	tg = webhookStack(t, bus, cfg)
	testutil.Eventually(t, 30*time.Second, "the delivery after the restart", func() bool {
		ds := rcv.deliveries()
		return len(ds) > failed && ds[len(ds)-1].status == 200
	})
	d := rcv.deliveries()[len(rcv.deliveries())-1]
	if d.header.Get("Verity-Event-Type") != string(events.TypeDeployFailed) || !checkSignature(hook.Secret, d) {
		t.Fatalf("delivered %v", d.header)
	}
	waitFor(t, "the success logged", func() bool {
		l := tg.webhookLog(t, "blog", token, hook.ID)
		return len(l.Attempts) > 0 && l.Attempts[0].Status == 200
	})
}

// Another site's token can neither list, add to, read the log of,
// redeliver nor remove a site's webhooks; an endpoint is reached only
// under its own site.
func TestWebhookAuthorization(t *testing.T) {
	bus := openBus(t, "gw-hooks")
	tg := webhookStack(t, bus, Config{AllowPrivateAddrs: true})
	blog := tg.createSite(t, "blog")
	other := tg.createSite(t, "other")
	rcv := newHookReceiver(t)
	hook := tg.addWebhook(t, "blog", blog, rcv.URL)
	mine := tg.addWebhook(t, "other", other, rcv.URL)
	add := `{"url":"` + rcv.URL + `"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		want                            int
	}{
		{"list", "GET", "/v1/sites/blog/webhooks", other, "", 403},
		{"add", "POST", "/v1/sites/blog/webhooks", other, add, 403},
		{"log", "GET", "/v1/sites/blog/webhooks/" + hook.ID + "/log", other, "", 403},
		{"redeliver", "POST", "/v1/sites/blog/webhooks/" + hook.ID + "/redeliver", other, `{"event":"x"}`, 403},
		{"remove", "DELETE", "/v1/sites/blog/webhooks/" + hook.ID, other, "", 403},
		{"no token", "GET", "/v1/sites/blog/webhooks", "", "", 401},
		{"wrong token", "GET", "/v1/sites/blog/webhooks", "vdt_nope", "", 403},
		{"another site's endpoint under its own name", "DELETE", "/v1/sites/other/webhooks/" + hook.ID, other, "", 404},
		{"its endpoint under another site", "GET", "/v1/sites/blog/webhooks/" + mine.ID + "/log", blog, "", 404},
		{"unknown id", "DELETE", "/v1/sites/blog/webhooks/wh_nope", blog, "", 404},
		{"admin on an unknown site", "POST", "/v1/sites/nosuch/webhooks", testAdmin, add, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg.apiJSON(t, tc.method, tc.path, tc.token, tc.body, tc.want, nil)
		})
	}
	var list api.WebhookList
	tg.apiJSON(t, "GET", "/v1/sites/blog/webhooks", testAdmin, "", 200, &list)
	if len(list.Webhooks) != 1 || list.Webhooks[0].ID != hook.ID || list.Webhooks[0].Secret != "" {
		t.Fatalf("blog's webhooks after the refusals: %+v", list)
	}
}

// Without AllowPrivateAddrs an endpoint on loopback or a private network
// is refused, and so is anything that is not an http(s) URL or a known
// event type; nothing is stored.
func TestWebhookRefusesBadEndpoints(t *testing.T) {
	bus := openBus(t, "gw-hooks")
	tg := webhookStack(t, bus, Config{})
	token := tg.createSite(t, "blog")
	for _, body := range []string{
		`{"url":"http://127.0.0.1:9/hook"}`,
		`{"url":"http://localhost:9/hook"}`,
		`{"url":"http://[::1]:9/"}`,
		`{"url":"https://10.1.2.3/"}`,
		`{"url":"http://169.254.169.254/latest/meta-data"}`,
		`{"url":"http://100.64.0.1/"}`,
		`{"url":"ftp://8.8.8.8/"}`,
		`{"url":"https://user:pw@8.8.8.8/"}`,
		`{"url":"/relative"}`,
		`{"url":"https://8.8.8.8/","events":["node.joined"]}`,
		`{"url":`,
	} {
		resp, got := tg.api(t, http.MethodPost, "/v1/sites/blog/webhooks", token, []byte(body))
		var e api.Error
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(got, &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want 400 with a reason", body, resp.StatusCode, got)
		}
	}
	kv, _ := bus.KV(events.BucketWebhooks)
	if keys, err := kv.ListKeys(t.Context()); err == nil {
		for k := range keys.Keys() {
			t.Errorf("stored %q after refusals", k)
		}
	}
}

// BenchmarkWebhookDelivery reports how many events a second one control
// plane delivers to one endpoint on loopback, signed and logged, from
// the events' publication to the endpoint's last 200.
func BenchmarkWebhookDelivery(b *testing.B) {
	ctx := b.Context()
	bus, err := events.Open(ctx, events.Config{StoreDir: b.TempDir(), Name: "gw-bench", Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	coord, err := coordinator.New(ctx, coordinator.Config{Bus: bus, AllowPrivateAddrs: true, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	defer coord.Close()
	c, err := New(ctx, Config{Bus: bus, Coordinator: coord, DataDir: b.TempDir(), PublicURL: "http://127.0.0.1:1",
		AdminToken: testAdmin, AllowPrivateAddrs: true, Logger: discard()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	got := 0
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got++
		mu.Unlock()
	}))
	defer rcv.Close()
	if _, err := c.CreateSite(ctx, "blog"); err != nil {
		b.Fatal(err)
	}
	if _, err := c.AddWebhook(ctx, "blog", rcv.URL, []string{string(events.TypeDeployFailed)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := bus.Emit(ctx, events.TypeDeployFailed, events.DeployFailed{Site: "blog", Error: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	testutil.Eventually(b, 5*time.Minute, "every delivery", func() bool { mu.Lock(); defer mu.Unlock(); return got >= b.N })
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
}

// One site whose endpoints all fail, with more jobs waiting for their
// retry than any fixed share of the queue, does not hold back another
// site's delivery: retries waiting for their time are not work in flight.
func TestWebhookFailingSiteDoesNotStallOthers(t *testing.T) {
	bus := openBus(t, "gw-hooks")
	tg := webhookStack(t, bus, Config{AllowPrivateAddrs: true, WebhookRetryMin: time.Hour, WebhookRetryMax: time.Hour})
	spam := tg.createSite(t, "spam")
	failing := make([]int, 1000)
	for i := range failing {
		failing[i] = 500
	}
	down := newHookReceiver(t, failing...)
	for range 16 {
		tg.addWebhook(t, "spam", spam, down.URL, string(events.TypeDeployFailed))
	}
	for range 3 { // 48 jobs, each failing once, then waiting an hour
		tg.api(t, http.MethodPost, "/v1/sites/spam/deploy", spam, []byte("not a CAR"))
	}
	waitFor(t, "the failing site's 48 first attempts", func() bool { return len(down.deliveries()) == 48 })

	blog := tg.createSite(t, "blog")
	up := newHookReceiver(t)
	tg.addWebhook(t, "blog", blog, up.URL, string(events.TypeDeployFailed))
	tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", blog, []byte("not a CAR"))
	waitFor(t, "the other site's delivery", func() bool { return len(up.deliveries()) == 1 })
}
