package coordinator

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// Node-signed HTTP requests: a node fetching content from a gateway proves
// it is a registered node by signing the request with its node key:
//
//	Authorization: VerityNode <node id>:<unix seconds>:<base64url ed25519 signature>
//
// over ContentPrefix + method + "\\n" + path + "\\n" + unix seconds. The
// gateway accepts it when the node is known to the registry (live or
// lost), the signature verifies against the key of its record and the time
// is within ContentAuthSkew of its clock.
const (
	ContentAuthScheme = "VerityNode"
	ContentPrefix     = "verity-node-request/1\n"
	ContentAuthSkew   = 5 * time.Minute
)

func contentSigningBytes(method, path string, unix int64) []byte {
	return []byte(ContentPrefix + method + "\n" + path + "\n" + strconv.FormatInt(unix, 10))
}

// SignContentRequest sets r's Authorization header for the node holding key.
func SignContentRequest(r *http.Request, key ed25519.PrivateKey, now time.Time) {
	node := noderecord.NodeIDFromKey(key.Public().(ed25519.PublicKey))
	unix := now.Unix()
	sig := ed25519.Sign(key, contentSigningBytes(r.Method, r.URL.Path, unix))
	r.Header.Set("Authorization", fmt.Sprintf("%s %s:%d:%s", ContentAuthScheme, node,
		unix, base64.RawURLEncoding.EncodeToString(sig)))
}

// AuthenticateNode checks r's node signature against the registry and
// returns the node id. Errors wrap ErrNodeAuth: a missing or malformed
// header, an unknown node, a time outside ContentAuthSkew, a bad signature.
func (c *Coordinator) AuthenticateNode(r *http.Request) (string, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), ContentAuthScheme+" ")
	if !ok {
		return "", fmt.Errorf("%w: no %s authorization", ErrNodeAuth, ContentAuthScheme)
	}
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("%w: malformed authorization", ErrNodeAuth)
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", fmt.Errorf("%w: malformed time", ErrNodeAuth)
	}
	if d := c.cfg.Now().Sub(time.Unix(unix, 0)); d > ContentAuthSkew || d < -ContentAuthSkew {
		return "", fmt.Errorf("%w: request time outside %v of the coordinator's clock", ErrNodeAuth, ContentAuthSkew)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", fmt.Errorf("%w: malformed signature", ErrNodeAuth)
	}
	c.mu.Lock()
	cs, known := c.cache[parts[0]]
	c.mu.Unlock()
	if !known {
		return "", fmt.Errorf("%w: unknown node", ErrNodeAuth)
	}
	pub := ed25519.PublicKey(cs.state.Record.Record.PublicKey)
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, contentSigningBytes(r.Method, r.URL.Path, unix), sig) {
		return "", ErrNodeAuth
	}
	return parts[0], nil
}
