package noderecord

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"
)

// A remembered record is still checked for time, and a changed one is
// verified again in full.
func TestVerifierRemembers(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	now := time.Now()
	s, err := Sign(Record{HTTP: "http://127.0.0.1:1", Issued: now, Expires: now.Add(time.Hour)}, priv)
	if err != nil {
		t.Fatal(err)
	}
	var v Verifier
	for range 2 {
		if err := v.Verify(s, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Verify(s, now.Add(2*time.Hour)); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired remembered record: %v", err)
	}
	tampered := s
	tampered.Record.HTTP = "http://127.0.0.1:2"
	if err := v.Verify(tampered, now); !errors.Is(err, ErrSignature) {
		t.Fatalf("tampered record with a remembered signature: %v", err)
	}
}
