package wasmclient

import (
	"testing"
)

const sessionDoc = `{"version":1,"site":"demo","root":"bafkr4ihkr4ld3m4gqkjf4reryxsy2s5tkbxprqkow6fin2iiyvreuzzab4","ttl":30,
 "fallback":"/.verity/v1/ipfs","nodes":[{"id":"nabc","webtransport":"https://127.0.0.1:4433/verity/v1",
 "certHashes":["AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=","bad"],"http":"http://127.0.0.1:4001","record":{"x":1}},
 {"id":""},{"id":"gateway"}]}`

func TestParseSession(t *testing.T) {
	s, err := ParseSession([]byte(sessionDoc))
	if err != nil {
		t.Fatal(err)
	}
	if s.RootCID().String() != s.Root || s.TTL != 30 || len(s.Nodes) != 1 {
		t.Fatalf("session %+v", s)
	}
	hs := s.Nodes[0].CertHashBytes()
	if len(hs) != 1 || hs[0][31] != 31 {
		t.Fatalf("cert hashes %x", hs)
	}
	for _, bad := range []string{`{}`, `{"version":2,"root":"bafkqaaa"}`, `{"version":1,"root":"nope"}`, `[`} {
		if _, err := ParseSession([]byte(bad)); err == nil || HTTPStatus(err) != 503 {
			t.Errorf("ParseSession(%s): err %v, want ErrSession", bad, err)
		}
	}
}

func FuzzParseSession(f *testing.F) {
	f.Add([]byte(sessionDoc))
	f.Add([]byte(`{"version":1,"root":"bafkqaaa","nodes":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSession(b)
		if err != nil {
			return
		}
		if !s.RootCID().Defined() {
			t.Fatal("session without a root")
		}
		for _, n := range s.Nodes {
			if n.ID == "" || n.ID == GatewayNodeID {
				t.Fatalf("node id %q kept", n.ID)
			}
			for _, h := range n.CertHashBytes() {
				if len(h) != 32 {
					t.Fatal("cert hash length")
				}
			}
		}
	})
}
