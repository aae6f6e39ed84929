package node

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// serveProof answers a coordinator's URL proof (nodeproto.ProofPath): the
// nonce in c signed with the node key, proving this URL is this node's.
func (n *Node) serveProof(w http.ResponseWriter, r *http.Request) {
	nonce, err := hex.DecodeString(r.URL.Query().Get("c"))
	if err != nil || len(nonce) != nodeproto.ProofNonceSize {
		http.Error(w, "want c=<64 hex digits>", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(nodeproto.URLProof{
		Node:      n.id,
		Signature: ed25519.Sign(n.priv, nodeproto.ProofSigningBytes(n.id, nonce)),
	})
}
