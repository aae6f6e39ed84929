package main

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/control"
)

// The documented check accepts what the gateway signs and refuses a
// tampered body or signature, another secret, and an old delivery.
func TestVerify(t *testing.T) {
	const secret = "vws_example"
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"e1","type":"site.published","time":"2027-01-15T08:00:00Z","source":"gw","data":{"site":"blog"}}`)
	signed := func(at time.Time, b []byte) http.Header {
		ts := strconv.FormatInt(at.Unix(), 10)
		h := http.Header{}
		h.Set("Verity-Timestamp", ts)
		h.Set("Verity-Signature", control.SignWebhook(secret, ts, b))
		return h
	}
	if err := verify(secret, signed(now, body), body, now.Add(time.Minute)); err != nil {
		t.Fatalf("a genuine delivery: %v", err)
	}
	tampered := []byte(strings.Replace(string(body), "blog", "blob", 1))
	badSig := signed(now, body)
	badSig.Set("Verity-Signature", "v1="+strings.Repeat("0", 64))
	for name, tc := range map[string]struct {
		h      http.Header
		body   []byte
		secret string
	}{
		"tampered body":    {signed(now, body), tampered, secret},
		"forged signature": {badSig, body, secret},
		"another secret":   {signed(now, body), body, "vws_other"},
		"replayed later":   {signed(now.Add(-6*time.Minute), body), body, secret},
		"no timestamp":     {http.Header{"Verity-Signature": {control.SignWebhook(secret, "", body)}}, body, secret},
	} {
		if err := verify(tc.secret, tc.h, tc.body, now); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

// docs/deploying-a-site.md shows verify.go as it is.
func TestDocShowsVerify(t *testing.T) {
	src, err := os.ReadFile("verify.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/deploying-a-site.md")
	if err != nil {
		t.Fatal(err)
	}
	_, fn, ok := strings.Cut(string(src), "\n// verify checks")
	if !ok || !strings.Contains(string(doc), "```go\n// verify checks"+fn+"```\n") {
		t.Fatal("docs/deploying-a-site.md does not show verify.go's verify function as it is")
	}
}
