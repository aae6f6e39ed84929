package nodeproto

import "encoding/hex"

// URL proofs. Before a node is listed, the coordinator checks that every
// URL in its record answers with the node's key: it asks each, over HTTP
// and over a WebTransport stream (the same request in the VERITY/1
// framing), for
//
//	GET /.well-known/verity/proof?c=<hex nonce>
//
// and the node answers a URLProof (JSON) whose signature, by the node key,
// covers ProofSigningBytes. A URL that answers with another key (another
// node's URL) or not at all is refused.
const (
	// ProofPath is where a node answers URL proofs, on HTTP and streams.
	ProofPath = "/.well-known/verity/proof"
	// ProofPrefix separates URL-proof signatures from anything else the
	// node key signs.
	ProofPrefix = "verity-url-proof/1\n"
	// ProofNonceSize is the size of a proof nonce (hex-encoded in c).
	ProofNonceSize = 32
)

// URLProof is a node's answer at ProofPath.
type URLProof struct {
	Node      string `json:"node"`      // the node id
	Signature []byte `json:"signature"` // ed25519 over ProofSigningBytes(Node, nonce), base64 in JSON
}

// ProofSigningBytes returns what a node signs to prove it answers a URL:
//
//	"verity-url-proof/1\n" node "\n" hex(nonce)
func ProofSigningBytes(node string, nonce []byte) []byte {
	b := make([]byte, 0, len(ProofPrefix)+len(node)+1+2*len(nonce))
	b = append(b, ProofPrefix...)
	b = append(b, node...)
	b = append(b, '\n')
	return hex.AppendEncode(b, nonce)
}
