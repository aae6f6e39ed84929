package secret

import (
	"strings"
	"testing"
)

func TestHashMatches(t *testing.T) {
	tok := New("vdt_")
	if !strings.HasPrefix(tok, "vdt_") || len(tok) != 4+43 {
		t.Fatalf("token %q", tok)
	}
	if New("vdt_") == tok {
		t.Fatal("two tokens alike")
	}
	h := Hash(tok)
	if len(h.Salt) != 16 || len(h.Hash) != 32 {
		t.Fatalf("hashed %+v", h)
	}
	if !h.Matches(tok) {
		t.Fatal("the token does not match its hash")
	}
	for _, wrong := range []string{"", tok[:len(tok)-1], tok + "x", New("vdt_")} {
		if h.Matches(wrong) {
			t.Fatalf("%q matches", wrong)
		}
	}
	if h2 := Hash(tok); string(h2.Salt) == string(h.Salt) || string(h2.Hash) == string(h.Hash) {
		t.Fatal("salts repeat")
	}
}

// A sealed secret opens only under the key it was sealed with, and not
// once a byte of it changed.
func TestSealer(t *testing.T) {
	s := NewSealer("vat_admin", "webhooks")
	sealed := s.Seal("vws_secret")
	if strings.Contains(string(sealed), "vws_secret") {
		t.Fatal("the sealed bytes hold the secret")
	}
	if got, err := s.Open(sealed); err != nil || got != "vws_secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if string(s.Seal("vws_secret")) == string(sealed) {
		t.Fatal("two seals alike: the nonce repeats")
	}
	for name, other := range map[string]*Sealer{
		"another credential": NewSealer("vat_other", "webhooks"),
		"another purpose":    NewSealer("vat_admin", "other"),
	} {
		if _, err := other.Open(sealed); err != ErrUnsealable {
			t.Errorf("%s: Open = %v, want ErrUnsealable", name, err)
		}
	}
	for i := range sealed {
		bad := append([]byte(nil), sealed...)
		bad[i] ^= 1
		if _, err := s.Open(bad); err != ErrUnsealable {
			t.Fatalf("byte %d altered: Open = %v", i, err)
		}
	}
	if _, err := s.Open(sealed[:10]); err != ErrUnsealable {
		t.Fatalf("short: %v", err)
	}
}
