package noderecord

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"
)

func FuzzParseVerify(f *testing.F) {
	s, err := Sign(testRecord(), testKey(1))
	if err != nil {
		f.Fatal(err)
	}
	js, _ := s.Marshal()
	f.Add(js, int64(0))
	f.Add(bytes.Replace(js, []byte(`"http":"`), []byte(`"http":"x`), 1), int64(0))
	f.Add([]byte(`{"record":{"certHashes":null},"signature":null}`), int64(0))
	f.Add([]byte(`{}`), int64(1))
	f.Add([]byte(`null`), int64(1))
	f.Fuzz(func(t *testing.T, data []byte, offset int64) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		now := t0.Add(time.Duration(offset))
		if p.Verify(now) != nil {
			return
		}
		// A verifying record must be signed by its own key over its own bytes.
		msg, err := SigningBytes(p.Record)
		if err != nil || !ed25519.Verify(p.Record.PublicKey, msg, p.Signature) {
			t.Fatalf("verified without a valid signature")
		}
		if p.Record.NodeID != NodeIDFromKey(p.Record.PublicKey) || len(p.Record.CertHashes) > MaxCertHashes {
			t.Fatalf("verified an invalid record")
		}
	})
}
