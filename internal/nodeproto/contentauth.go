package nodeproto

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// Node-signed HTTP requests: a node fetching content from a gateway (a
// pin order's CAR, its own earnings) proves it is a registered node by
// signing the request with its node key:
//
//	Authorization: VerityNode <node id>:<unix seconds>:<base64url ed25519 signature>
//
// over ContentPrefix + method + "\n" + path + "\n" + unix seconds. The
// gateway accepts it when the node is known to the registry (live or
// lost), the signature verifies against the key of its record and the time
// is within ContentAuthSkew of its clock.
const (
	ContentAuthScheme = "VerityNode"
	ContentPrefix     = "verity-node-request/1\n"
	ContentAuthSkew   = 5 * time.Minute
)

// ContentSigningBytes returns what a node signs for a request of method
// on path (the URL's path, without the query) at unix seconds.
func ContentSigningBytes(method, path string, unix int64) []byte {
	return []byte(ContentPrefix + method + "\n" + path + "\n" + strconv.FormatInt(unix, 10))
}

// SignContentRequest sets r's Authorization header for the node holding key.
func SignContentRequest(r *http.Request, key ed25519.PrivateKey, now time.Time) {
	node := noderecord.NodeIDFromKey(key.Public().(ed25519.PublicKey))
	unix := now.Unix()
	sig := ed25519.Sign(key, ContentSigningBytes(r.Method, r.URL.Path, unix))
	r.Header.Set("Authorization", ContentAuthScheme+" "+node+":"+strconv.FormatInt(unix, 10)+":"+
		base64.RawURLEncoding.EncodeToString(sig))
}

// VerifyContentRequest checks r's node signature at now and returns the
// node id. keyOf returns the public key of a node the verifier knows.
// Errors are *ContentAuthError: a missing or malformed header, a time
// outside ContentAuthSkew, an unknown node, a bad signature.
func VerifyContentRequest(r *http.Request, now time.Time, keyOf func(node string) (ed25519.PublicKey, bool)) (string, error) {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), ContentAuthScheme+" ")
	if !ok {
		return "", &ContentAuthError{Reason: "no " + ContentAuthScheme + " authorization"}
	}
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return "", &ContentAuthError{Reason: "malformed authorization"}
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", &ContentAuthError{Reason: "malformed time"}
	}
	if d := now.Sub(time.Unix(unix, 0)); d > ContentAuthSkew || d < -ContentAuthSkew {
		return "", &ContentAuthError{Reason: "request time outside " + ContentAuthSkew.String() + " of the coordinator's clock"}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", &ContentAuthError{Reason: "malformed signature"}
	}
	pub, known := keyOf(parts[0])
	if !known {
		return "", &ContentAuthError{Reason: "unknown node"}
	}
	if len(pub) != ed25519.PublicKeySize || !ed25519.Verify(pub, ContentSigningBytes(r.Method, r.URL.Path, unix), sig) {
		return "", &ContentAuthError{}
	}
	return parts[0], nil
}
