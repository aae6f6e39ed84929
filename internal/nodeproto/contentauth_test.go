package nodeproto

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// goldenAuth is SignContentRequest's header for goldenKey, GET
// /v1/content/bafy.car at goldenTime (the query is not signed).
const goldenAuth = "VerityNode npg2vmlup4zkpsqdywejorkmlu6ib7bj242k35v7a4oiqxlieszsa:1741064767:YowQ96ykz3euiU2O7_OuZ3nQEhucGcS4lIQLZI0KUYi8F156vNPTUgBT02kmjyeZktggaoa3gpO6BssCkUueAA"

func goldenKeyOf(node string) (ed25519.PublicKey, bool) {
	pub := goldenKey().Public().(ed25519.PublicKey)
	if node != noderecord.NodeIDFromKey(pub) {
		return nil, false
	}
	return pub, true
}

func TestSignContentRequest(t *testing.T) {
	r, _ := http.NewRequest(http.MethodGet, "https://gw.example/v1/content/bafy.car?x=1", nil)
	SignContentRequest(r, goldenKey(), goldenTime)
	if got := r.Header.Get("Authorization"); got != goldenAuth {
		t.Fatalf("Authorization = %q, want %q", got, goldenAuth)
	}
	node, err := VerifyContentRequest(r, goldenTime.Truncate(time.Second).Add(ContentAuthSkew), goldenKeyOf)
	if err != nil || node != noderecord.NodeIDFromKey(goldenKey().Public().(ed25519.PublicKey)) {
		t.Fatalf("VerifyContentRequest = %q, %v", node, err)
	}
}

func TestVerifyContentRequestRefusals(t *testing.T) {
	id := noderecord.NodeIDFromKey(goldenKey().Public().(ed25519.PublicKey))
	_, otherKey, _ := ed25519.GenerateKey(nil)
	other := func() string {
		r, _ := http.NewRequest(http.MethodGet, "https://gw.example/v1/content/bafy.car", nil)
		SignContentRequest(r, otherKey, goldenTime)
		return r.Header.Get("Authorization")
	}()
	sig := goldenAuth[strings.LastIndexByte(goldenAuth, ':')+1:]
	cases := []struct {
		name, method, path, auth string
		now                      time.Time
		reason                   string
	}{
		{"no header", "GET", "/v1/content/bafy.car", "", goldenTime, "no VerityNode authorization"},
		{"bearer", "GET", "/v1/content/bafy.car", "Bearer x", goldenTime, "no VerityNode authorization"},
		{"two parts", "GET", "/v1/content/bafy.car", "VerityNode " + id + ":1741064767", goldenTime, "malformed authorization"},
		{"four parts", "GET", "/v1/content/bafy.car", goldenAuth + ":x", goldenTime, "malformed authorization"},
		{"bad time", "GET", "/v1/content/bafy.car", "VerityNode " + id + ":soon:" + sig, goldenTime, "malformed time"},
		{"too late", "GET", "/v1/content/bafy.car", goldenAuth, goldenTime.Add(ContentAuthSkew + time.Second), "request time outside 5m0s of the coordinator's clock"},
		{"too early", "GET", "/v1/content/bafy.car", goldenAuth, goldenTime.Add(-ContentAuthSkew - time.Second), "request time outside 5m0s of the coordinator's clock"},
		{"bad base64", "GET", "/v1/content/bafy.car", "VerityNode " + id + ":1741064767:!!", goldenTime, "malformed signature"},
		{"short signature", "GET", "/v1/content/bafy.car", "VerityNode " + id + ":1741064767:AAAA", goldenTime, "malformed signature"},
		{"unknown node", "GET", "/v1/content/bafy.car", other, goldenTime, "unknown node"},
		{"other path", "GET", "/v1/content/other.car", goldenAuth, goldenTime, ""},
		{"other method", "HEAD", "/v1/content/bafy.car", goldenAuth, goldenTime, ""},
		{"claims another's signature", "GET", "/v1/content/bafy.car", strings.Replace(other, other[len("VerityNode "):strings.IndexByte(other, ':')], id, 1), goldenTime, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, _ := http.NewRequest(c.method, "https://gw.example"+c.path, nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			_, err := VerifyContentRequest(r, c.now, goldenKeyOf)
			var ae *ContentAuthError
			if !errors.As(err, &ae) || !errors.Is(err, ErrContentAuth) || ae.Reason != c.reason {
				t.Fatalf("err = %v, want reason %q", err, c.reason)
			}
		})
	}
}

// FuzzVerifyContentRequest: no header makes the verifier panic, and one
// that authenticates names the signing node and the signed time (the
// signature's base64 may vary in its unused trailing bits).
func FuzzVerifyContentRequest(f *testing.F) {
	f.Add(goldenAuth)
	f.Add("")
	f.Add("VerityNode a:b:c")
	f.Add("VerityNode ::")
	f.Add(goldenAuth + ":")
	f.Fuzz(func(t *testing.T, auth string) {
		r, _ := http.NewRequest(http.MethodGet, "https://gw.example/v1/content/bafy.car", nil)
		r.Header["Authorization"] = []string{auth}
		node, err := VerifyContentRequest(r, goldenTime, goldenKeyOf)
		if err == nil && !strings.HasPrefix(auth, goldenAuth[:strings.LastIndexByte(goldenAuth, ':')+1]) {
			t.Fatalf("%q authenticated as %q", auth, node)
		}
	})
}
