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
