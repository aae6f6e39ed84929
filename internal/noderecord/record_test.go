package noderecord

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

func testRecord() Record {
	h1 := sha256.Sum256([]byte("cert1"))
	h2 := sha256.Sum256([]byte("cert2"))
	return Record{
		HTTP:         "http://127.0.0.1:4001",
		WebTransport: "https://127.0.0.1:4433/verity/v1",
		CertHashes: []CertHash{
			{SHA256: h1[:], NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(13 * 24 * time.Hour)},
			{SHA256: h2[:], NotBefore: t0.Add(9 * 24 * time.Hour), NotAfter: t0.Add(22 * 24 * time.Hour)},
		},
		Issued:  t0,
		Expires: t0.Add(24 * time.Hour),
	}
}

func mustSign(t testing.TB, rec Record, priv ed25519.PrivateKey) Signed {
	t.Helper()
	s, err := Sign(rec, priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNodeIDFromKey(t *testing.T) {
	pub := make(ed25519.PublicKey, 32)
	id := NodeIDFromKey(pub)
	if id != "n"+strings.Repeat("a", 52) {
		t.Fatalf("id %q", id)
	}
	id = NodeIDFromKey(testKey(7).Public().(ed25519.PublicKey))
	if len(id) != 53 || id[0] != 'n' || strings.ToLower(id) != id || strings.Contains(id, "=") {
		t.Fatalf("id %q", id)
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	priv := testKey(1)
	s := mustSign(t, testRecord(), priv)
	if s.Record.NodeID != NodeIDFromKey(priv.Public().(ed25519.PublicKey)) {
		t.Fatalf("NodeID not filled: %q", s.Record.NodeID)
	}
	if err := s.Verify(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	js, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(t0.Add(time.Hour)); err != nil {
		t.Fatalf("after JSON round trip: %v", err)
	}
	if got := p.Record.ValidCertHashes(t0); len(got) != 1 {
		t.Fatalf("valid hashes at t0: %d", len(got))
	}
	if got := p.Record.ValidCertHashes(t0.Add(10 * 24 * time.Hour)); len(got) != 2 {
		t.Fatalf("valid hashes at t0+10d: %d", len(got))
	}
}

func TestSignNonUTCTimes(t *testing.T) {
	rec := testRecord()
	loc := time.FixedZone("X", 3*3600)
	rec.Issued = rec.Issued.In(loc)
	rec.Expires = rec.Expires.In(loc)
	s := mustSign(t, rec, testKey(2))
	js, _ := s.Marshal()
	p, _ := Parse(js)
	if err := p.Verify(t0); err != nil {
		t.Fatal(err)
	}
}

func TestSignRejects(t *testing.T) {
	priv := testKey(1)
	other := testKey(2).Public().(ed25519.PublicKey)
	cases := []struct {
		name string
		mod  func(*Record)
		err  error
	}{
		{"foreign key", func(r *Record) { r.PublicKey = other }, ErrPublicKey},
		{"foreign id", func(r *Record) { r.NodeID = NodeIDFromKey(other) }, ErrNodeID},
		{"short hash", func(r *Record) { r.CertHashes[0].SHA256 = r.CertHashes[0].SHA256[:31] }, ErrCertHash},
		{"inverted cert validity", func(r *Record) { r.CertHashes[1].NotAfter = r.CertHashes[1].NotBefore }, ErrCertHash},
		{"too many", func(r *Record) {
			for len(r.CertHashes) <= MaxCertHashes {
				r.CertHashes = append(r.CertHashes, r.CertHashes[0])
			}
		}, ErrTooManyCertHashes},
		{"expires before issued", func(r *Record) { r.Expires = r.Issued }, ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := testRecord()
			tc.mod(&rec)
			if _, err := Sign(rec, priv); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := Sign(testRecord(), priv[:10]); !errors.Is(err, ErrPublicKey) {
		t.Fatalf("short private key: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	priv := testKey(1)
	attacker := testKey(9)
	good := mustSign(t, testRecord(), priv)
	now := t0.Add(time.Hour)
	cases := []struct {
		name string
		s    func() Signed
		now  time.Time
		err  error
	}{
		{"tampered http", func() Signed { s := clone(good); s.Record.HTTP = "http://evil"; return s }, now, ErrSignature},
		{"tampered hash", func() Signed { s := clone(good); s.Record.CertHashes[0].SHA256[0] ^= 1; return s }, now, ErrSignature},
		{"tampered expiry", func() Signed { s := clone(good); s.Record.Expires = s.Record.Expires.Add(time.Hour); return s }, now, ErrSignature},
		{"dropped hash", func() Signed { s := clone(good); s.Record.CertHashes = s.Record.CertHashes[:1]; return s }, now, ErrSignature},
		{"flipped sig", func() Signed { s := clone(good); s.Signature[5] ^= 0x80; return s }, now, ErrSignature},
		{"short sig", func() Signed { s := clone(good); s.Signature = s.Signature[:63]; return s }, now, ErrSignature},
		{"no sig", func() Signed { s := clone(good); s.Signature = nil; return s }, now, ErrSignature},
		{"forged by other key keeping id", func() Signed {
			s := clone(good)
			msg, _ := SigningBytes(s.Record)
			s.Signature = ed25519.Sign(attacker, msg)
			return s
		}, now, ErrSignature},
		{"key swapped, id kept", func() Signed {
			s := clone(good)
			s.Record.PublicKey = attacker.Public().(ed25519.PublicKey)
			msg, _ := SigningBytes(s.Record)
			s.Signature = ed25519.Sign(attacker, msg)
			return s
		}, now, ErrNodeID},
		{"bad key length", func() Signed { s := clone(good); s.Record.PublicKey = s.Record.PublicKey[:31]; return s }, now, ErrPublicKey},
		{"expired", func() Signed { return good }, t0.Add(24 * time.Hour), ErrExpired},
		{"not yet valid", func() Signed { return good }, t0.Add(-time.Hour), ErrNotYetValid},
		{"wrong domain", func() Signed {
			s := clone(good)
			js, _ := json.Marshal(s.Record)
			s.Signature = ed25519.Sign(priv, js)
			return s
		}, now, ErrSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s().Verify(tc.now); !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	if err := good.Verify(now); err != nil {
		t.Fatalf("original modified by cases: %v", err)
	}
	if err := good.Verify(t0.Add(-time.Minute)); err != nil {
		t.Fatalf("small clock skew: %v", err)
	}
}

func clone(s Signed) Signed {
	js, _ := json.Marshal(s)
	var c Signed
	_ = json.Unmarshal(js, &c)
	return c
}

func TestParseRejects(t *testing.T) {
	if _, err := Parse([]byte("{")); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	if _, err := Parse(make([]byte, MaxRecordBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	// Unknown fields are dropped; a signature never covers them.
	s := mustSign(t, testRecord(), testKey(1))
	js, _ := s.Marshal()
	js = []byte(strings.Replace(string(js), `"http":`, `"extra":1,"http":`, 1))
	p, err := Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(t0); err != nil {
		t.Fatal(err)
	}
}
