package coordinator

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// AuthenticateNode checks r's node signature (nodeproto.SignContentRequest)
// against the registry and returns the node id. The node must be known to
// the registry, live or lost, and the signature verify against the key of
// its record. Errors wrap ErrNodeAuth: a missing or malformed header, an
// unknown node, a time outside nodeproto.ContentAuthSkew, a bad signature.
func (c *Coordinator) AuthenticateNode(r *http.Request) (string, error) {
	node, err := nodeproto.VerifyContentRequest(r, c.cfg.Now(), c.nodeKey)
	var ae *nodeproto.ContentAuthError
	switch {
	case err == nil:
		return node, nil
	case !errors.As(err, &ae):
		return "", fmt.Errorf("%w: %w", ErrNodeAuth, err)
	case ae.Reason == "":
		return "", ErrNodeAuth
	}
	return "", fmt.Errorf("%w: %s", ErrNodeAuth, ae.Reason)
}

// nodeKey returns the public key of a node the registry knows.
func (c *Coordinator) nodeKey(node string) (ed25519.PublicKey, bool) {
	c.mu.Lock()
	cs, known := c.cache[node]
	c.mu.Unlock()
	if !known {
		return nil, false
	}
	return ed25519.PublicKey(cs.state.Record.Record.PublicKey), true
}
