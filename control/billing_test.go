package control

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/api"
)

// A site created without an account belongs to the default account,
// named in the site's records and created when it does not exist yet, so
// its traffic is billed like any other.
func TestSiteWithoutAccountNamesTheDefault(t *testing.T) {
	tg, _ := accountsGateway(t, false)
	var created api.SiteCreated
	tg.apiJSON(t, "POST", "/v1/sites", testAdmin, `{"name":"blog"}`, http.StatusCreated, &created)
	if created.Account != DefaultAccount {
		t.Fatalf("created %+v, want account %q named", created, DefaultAccount)
	}
	var a api.Account
	tg.apiJSON(t, "GET", "/v1/accounts/"+DefaultAccount, testAdmin, "", http.StatusOK, &a)
	car, root := siteCAR(t, map[string][]byte{"index.html": []byte("<h1>blog</h1>")})
	rec, err := tg.ctl.Deploy(t.Context(), "blog", bytes.NewReader(car))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Account != DefaultAccount || rec.Root != root {
		t.Fatalf("deploy %+v, want account %q", rec, DefaultAccount)
	}
}

// A custom domain is billed to the site that published its root first: a
// later copy of the same content does not move it.
func TestSiteOfRoot(t *testing.T) {
	bus := openBus(t, "gw-roots")
	s := newKVSites(t, bus)
	rootA := testCID(t, "a")
	rootB := testCID(t, "b")
	if _, err := s.PublishFor(t.Context(), "original", rootA, "acme", 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if _, err := s.PublishFor(t.Context(), "copycat", rootA, "mallory", 0); err != nil {
		t.Fatal(err)
	}
	// The original moves on: its old root stays its own.
	if _, err := s.PublishFor(t.Context(), "original", rootB, "acme", 0); err != nil {
		t.Fatal(err)
	}
	for root, want := range map[string]string{rootA: "original", rootB: "original"} {
		site, err := s.SiteOfRoot(t.Context(), root)
		if err != nil || site.Name != want || site.Account != "acme" {
			t.Fatalf("SiteOfRoot(%s) = %+v, %v; want %s of acme", root, site, err, want)
		}
	}
	if _, err := s.SiteOfRoot(t.Context(), testCID(t, "nobody")); !errors.Is(err, gateway.ErrUnknownSite) {
		t.Fatalf("a root no site published: %v", err)
	}
}
