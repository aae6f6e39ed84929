package control

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// previewStack starts a gateway on a bus of its own, sweeping previews
// every 50 ms with a clock moved on by skew, and two nodes.
func previewStack(t *testing.T, name string) (*testStack, *events.Bus, []*node.Node, *atomic.Int64) {
	t.Helper()
	skew := new(atomic.Int64)
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	bus := openBus(t, name)
	tg, _ := startStack(t, bus, Config{DataDir: t.TempDir(), AdminToken: testAdmin, PreviewSweep: 50 * time.Millisecond, Now: now}, gateway.Config{})
	return tg, bus, startNodes(t, tg, 2), skew
}

// A preview deploy is placed on the nodes and served at its own origin,
// never on the site's; promote publishes it; an expired preview answers
// 404 at once, and once swept its root is unpinned from the nodes and its
// blocks collected, while a root a site publishes stays.
func TestPreviewDeployPromoteExpire(t *testing.T) {
	tg, _, nodes, skew := previewStack(t, "gw-preview")
	token := tg.createSite(t, "blog")
	page := func(v string) map[string][]byte {
		files := sitetest.Files()
		files["index.html"] = []byte("<h1>" + v + "</h1>")
		return files
	}
	car1, root1 := siteCAR(t, page("v1"))
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy", token, car1); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "publish v1", func() bool { st := tg.siteStatus(t, "blog", token); return st.Site != nil && st.Site.Root == root1 })

	preview := func(v, ttl string) (api.PreviewRecord, string) {
		t.Helper()
		car, root := siteCAR(t, page(v))
		resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy?preview=1&ttl="+ttl, token, car)
		var rec api.PreviewRecord
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &rec) != nil || rec.Root != root {
			t.Fatalf("preview deploy: %d %s", resp.StatusCode, body)
		}
		waitFor(t, "nodes pin the preview "+v, func() bool {
			if p, _ := tg.Coordinator().Placement(root); len(p.Holders(coordinator.HolderPinned)) != len(nodes) {
				return false
			}
			for _, n := range nodes {
				if !slices.Contains(n.Pins(), root) {
					return false
				}
			}
			return true
		})
		return rec, root
	}
	rec2, root2 := preview("v2", "1h")
	resp, body := tg.api(t, http.MethodGet, "/v1/sites/blog/previews/"+root2, token, nil)
	var got api.PreviewRecord
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Pinned != 2 || got.URL != rec2.URL || got.Site != "blog" {
		t.Fatalf("GET preview: %d %s", resp.StatusCode, body)
	}
	label := gateway.PreviewLabel(root2)
	if first, _, _ := strings.Cut(label, "."); len(first) > 63 || !strings.Contains(rec2.URL, label+".localhost") {
		t.Fatalf("preview URL %q (label %d chars)", rec2.URL, len(first))
	}
	// Not on the site's origin: the site and its latest deploy are v1.
	st := tg.siteStatus(t, "blog", token)
	if st.Site.Root != root1 || st.Site.Version != 1 || st.Deploy.Root != root1 {
		t.Fatalf("after a preview the site is %s v%d, deploy %s", st.Site.Root, st.Site.Version, st.Deploy.Root)
	}
	if _, body := tg.get(t, tg.SiteURL("blog")); string(body) != "<h1>v1</h1>" {
		t.Fatalf("site origin serves %q", body)
	}
	// On its own origin, by the gateway and in the worker's session.
	if resp, body := tg.get(t, tg.SiteURL(label)); resp.StatusCode != 200 || string(body) != "<h1>v2</h1>" {
		t.Fatalf("preview origin: %d %q", resp.StatusCode, body)
	}
	if s := tg.session(t, label); s.Root != root2 || s.Site != label || len(s.Nodes) != 2 {
		t.Fatalf("preview session: root %s site %s, %d nodes", s.Root, s.Site, len(s.Nodes))
	}
	// Serving the preview is no change of the site's root.
	if _, body := tg.get(t, tg.SiteURL("blog")); string(body) != "<h1>v1</h1>" {
		t.Fatalf("site origin after the preview's serves %q", body)
	}
	// An unknown root is no preview; another site's token cannot promote.
	if resp, _ := tg.get(t, tg.SiteURL(gateway.PreviewLabel(root1))); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a published root as a preview: %d", resp.StatusCode)
	}
	other := tg.createSite(t, "other")
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/other/promote", other, []byte(`{"root":"`+root2+`"}`)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("promote by another site: %d %s", resp.StatusCode, body)
	}

	// Promote publishes it.
	resp, body = tg.api(t, http.MethodPost, "/v1/sites/blog/promote", token, []byte(`{"root":"`+root2+`"}`))
	var site api.SiteRecord
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &site) != nil || site.Root != root2 || site.Version != 2 {
		t.Fatalf("promote: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the site serves v2", func() bool { _, b := tg.get(t, tg.SiteURL("blog")); return string(b) == "<h1>v2</h1>" })

	// A third version, previewed and left to expire.
	_, root3 := preview("v3", "2h")
	skew.Store(int64(3 * time.Hour))
	for _, root := range []string{root2, root3} {
		if resp, _ := tg.get(t, tg.SiteURL(gateway.PreviewLabel(root))); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("expired preview %s: %d", root, resp.StatusCode)
		}
	}
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/promote", token, []byte(`{"root":"`+root3+`"}`)); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("promote an expired preview: %d %s", resp.StatusCode, body)
	}
	if resp, _ := tg.api(t, http.MethodGet, "/v1/sites/blog/previews/"+root3, token, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET an expired preview: %d", resp.StatusCode)
	}
	waitFor(t, "the expired preview unpinned and collected", func() bool {
		if _, ok := tg.Coordinator().Placement(root3); ok {
			return false
		}
		for _, n := range nodes {
			if slices.Contains(n.Pins(), root3) || holds(t, n, root3) {
				return false
			}
		}
		return true
	})
	if resp, _ := tg.get(t, tg.SiteURL(gateway.PreviewLabel(root3))); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("swept preview: %d", resp.StatusCode)
	}
	// The promoted root stays: the site publishes it.
	p, ok := tg.Coordinator().Placement(root2)
	if !ok || len(p.Holders(coordinator.HolderPinned)) != 2 {
		t.Fatalf("the promoted root's placement: %+v", p)
	}
	for _, n := range nodes {
		if !slices.Contains(n.Pins(), root2) {
			t.Fatalf("node %s dropped the published root", n.ID())
		}
	}
	if _, body := tg.get(t, tg.SiteURL("blog")); string(body) != "<h1>v2</h1>" {
		t.Fatalf("site origin after the sweep serves %q", body)
	}
}

// Two sites preview the same root: each has its own preview, and the one
// that expires first takes nothing from the other (its record, its
// origin, its promotion, its placement). Once both expired the root is
// unplaced: neither leaves its label behind.
func TestPreviewOfTheSameRootBySecondSite(t *testing.T) {
	tg, _, nodes, skew := previewStack(t, "gw-preview-shared")
	blog := tg.createSite(t, "blog")
	other := tg.createSite(t, "other")
	files := sitetest.Files()
	files["index.html"] = []byte("<h1>shared</h1>")
	car, root := siteCAR(t, files)
	deploy := func(site, token, ttl string) {
		t.Helper()
		resp, body := tg.api(t, http.MethodPost, "/v1/sites/"+site+"/deploy?preview=1&ttl="+ttl, token, car)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("preview deploy by %s: %d %s", site, resp.StatusCode, body)
		}
	}
	deploy("blog", blog, "2h")
	deploy("other", other, "10m")
	waitFor(t, "nodes pin the preview", func() bool {
		p, _ := tg.Coordinator().Placement(root)
		return len(p.Holders(coordinator.HolderPinned)) == len(nodes)
	})
	for site, token := range map[string]string{"blog": blog, "other": other} {
		resp, body := tg.api(t, http.MethodGet, "/v1/sites/"+site+"/previews/"+root, token, nil)
		var got api.PreviewRecord
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Site != site {
			t.Fatalf("GET %s's preview: %d %s", site, resp.StatusCode, body)
		}
	}

	// other's preview expires and is swept; blog's stays whole.
	skew.Store(int64(30 * time.Minute))
	waitFor(t, "other's preview swept", func() bool {
		resp, _ := tg.api(t, http.MethodGet, "/v1/sites/other/previews/"+root, other, nil)
		return resp.StatusCode == http.StatusNotFound
	})
	time.Sleep(200 * time.Millisecond) // a few more sweeps
	resp, body := tg.api(t, http.MethodGet, "/v1/sites/blog/previews/"+root, blog, nil)
	var got api.PreviewRecord
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Site != "blog" || got.Pinned != len(nodes) {
		t.Fatalf("blog's preview after other's expired: %d %s", resp.StatusCode, body)
	}
	if resp, body := tg.get(t, tg.SiteURL(gateway.PreviewLabel(root))); resp.StatusCode != http.StatusOK || string(body) != "<h1>shared</h1>" {
		t.Fatalf("the preview origin after other's expired: %d %q", resp.StatusCode, body)
	}
	for _, n := range nodes {
		if !slices.Contains(n.Pins(), root) {
			t.Fatalf("node %s dropped blog's preview", n.ID())
		}
	}

	// blog's expires too: nothing keeps the root placed.
	skew.Store(int64(3 * time.Hour))
	waitFor(t, "the root unplaced once both previews expired", func() bool {
		if _, ok := tg.Coordinator().Placement(root); ok {
			return false
		}
		for _, n := range nodes {
			if slices.Contains(n.Pins(), root) {
				return false
			}
		}
		return true
	})
}

// A preview recorded in the earlier form (keyed by its root alone, as a
// gateway of an earlier version wrote it) is still served, promotable and
// swept; the same site previewing the root again replaces it.
func TestPreviewRecordOfTheEarlierForm(t *testing.T) {
	tg, bus, nodes, skew := previewStack(t, "gw-preview-legacy")
	token := tg.createSite(t, "blog")
	files := sitetest.Files()
	files["index.html"] = []byte("<h1>legacy</h1>")
	car, root := siteCAR(t, files)
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy?preview=1&ttl=1h", token, car); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("preview deploy: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "nodes pin the preview", func() bool {
		p, _ := tg.Coordinator().Placement(root)
		return len(p.Holders(coordinator.HolderPinned)) == len(nodes)
	})
	// Rewrite the record in the earlier form.
	kv, err := bus.KV(events.BucketPreviews)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := kv.Get(ctx, root+".blog")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, root, e.Value()); err != nil {
		t.Fatal(err)
	}
	if err := kv.Delete(ctx, root+".blog"); err != nil {
		t.Fatal(err)
	}
	if resp, body := tg.api(t, http.MethodGet, "/v1/sites/blog/previews/"+root, token, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the earlier form's preview: %d %s", resp.StatusCode, body)
	}
	if resp, body := tg.get(t, tg.SiteURL(gateway.PreviewLabel(root))); resp.StatusCode != http.StatusOK || string(body) != "<h1>legacy</h1>" {
		t.Fatalf("the earlier form's preview origin: %d %q", resp.StatusCode, body)
	}
	// Deployed again by the same site: one record, of the new form.
	if resp, body := tg.api(t, http.MethodPost, "/v1/sites/blog/deploy?preview=1&ttl=2h", token, car); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("preview deploy again: %d %s", resp.StatusCode, body)
	}
	if _, err := kv.Get(ctx, root); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("the earlier form's record after a new preview: %v", err)
	}
	// Past the first ttl, the second preview holds the root.
	skew.Store(int64(90 * time.Minute))
	time.Sleep(300 * time.Millisecond)
	if resp, body := tg.api(t, http.MethodGet, "/v1/sites/blog/previews/"+root, token, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET the preview deployed again: %d %s", resp.StatusCode, body)
	}
	skew.Store(int64(3 * time.Hour))
	waitFor(t, "the root unplaced", func() bool { _, ok := tg.Coordinator().Placement(root); return !ok })
}
