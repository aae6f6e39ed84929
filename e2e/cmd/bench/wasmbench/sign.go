package main

import (
	"crypto/ed25519"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// SignPerBlock measures what paying costs the worker: one receipt signed
// per verified 256 KiB block (payment.Signer, as the worker uses it), in
// microseconds per block.
func SignPerBlock(minDur time.Duration) (float64, error) {
	s, err := payment.NewSigner(payment.SignerConfig{})
	if err != nil {
		return 0, err
	}
	var node payment.NodeKey
	v := payment.Voucher{Account: "bench", Session: s.SessionKey(), Budget: 1 << 62, NodeCap: 1 << 62,
		Nodes: []payment.NodeTag{payment.TagOf(node)}, Expires: time.Now().Add(time.Hour).Truncate(time.Second)}
	if err := v.Sign(ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))); err != nil { // any key: the worker does not check it
		return 0, err
	}
	if err := s.SetVoucher(v); err != nil {
		return 0, err
	}
	n := 0
	start := time.Now()
	for n < 2 || time.Since(start) < minDur {
		if _, _, err := s.Verified(node, payment.BlockSize); err != nil {
			return 0, err
		}
		n++
	}
	return float64(time.Since(start).Microseconds()) / float64(n), nil
}
