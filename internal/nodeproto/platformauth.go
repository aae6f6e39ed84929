package nodeproto

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// Content requests over a paying node's HTTP port. A node that requires
// payment serves /ipfs/ on HTTP only to the platform's own callers; a
// visitor pays over WebTransport or WebRTC (docs/protocol.md §3.3):
//
//   - a gateway or coordinator signs the request with a gateway key the
//     node trusts (the keys vouchers are signed with):
//
//     Authorization: VerityGateway <key id>:<unix seconds>:<signature>
//
//     over GatewayRequestPrefix + method + "\n" + path + "\n" + query +
//     "\n" + unix seconds (the raw query, without "?"), the key id and
//     signature in base64url;
//
//   - another node (a pin from a holder, a block repair) signs it with its
//     node key (SignContentRequest) and shows a grant the coordinator
//     signed with such a key for that node and the CID the path starts
//     with:
//
//     Verity-Grant: <node id>:<cid>:<scope>:<expiry unix seconds>:<key id>:<signature>
//
//     over GrantPrefix + node + "\n" + cid + "\n" + scope + "\n" + expiry;
//     scope is GrantDAG (a pin: the CID's DAG, any format) or GrantBlock
//     (a repair: that one block, format=raw).
//
// A node with any node key can sign a request, so the grant is what binds
// it to content the coordinator sent it to fetch.
const (
	GatewayAuthScheme    = "VerityGateway"
	GatewayRequestPrefix = "verity-gateway-request/1\n"
	GrantHeader          = "Verity-Grant"
	GrantPrefix          = "verity-fetch-grant/1\n"
	GrantDAG             = "dag"
	GrantBlock           = "block"
	// GrantTTL is how long a grant the coordinator gives is valid: a
	// pin tries its sources one after another within it.
	GrantTTL = time.Hour
)

// GatewaySigningBytes returns what a gateway key signs for a request of
// method on path with the raw query at unix seconds. The query is signed:
// a signature for one block (?format=raw) must not fetch its whole DAG
// (?format=car&dag-scope=all).
func GatewaySigningBytes(method, path, query string, unix int64) []byte {
	return []byte(GatewayRequestPrefix + method + "\n" + path + "\n" + query + "\n" + strconv.FormatInt(unix, 10))
}

// SignGatewayRequest sets r's Authorization header for the gateway key;
// without a key (payments off) it leaves r unsigned.
func SignGatewayRequest(r *http.Request, key ed25519.PrivateKey, now time.Time) {
	if key == nil {
		return
	}
	id := payment.KeyIDOf(key.Public().(ed25519.PublicKey))
	unix := now.Unix()
	sig := ed25519.Sign(key, GatewaySigningBytes(r.Method, r.URL.Path, r.URL.RawQuery, unix))
	r.Header.Set("Authorization", GatewayAuthScheme+" "+base64.RawURLEncoding.EncodeToString(id[:])+":"+
		strconv.FormatInt(unix, 10)+":"+base64.RawURLEncoding.EncodeToString(sig))
}

// VerifyGatewayRequest checks r's gateway signature at now against keys.
// Errors are *ContentAuthError.
func VerifyGatewayRequest(r *http.Request, now time.Time, keys payment.GatewayKeys) error {
	v, ok := strings.CutPrefix(r.Header.Get("Authorization"), GatewayAuthScheme+" ")
	if !ok {
		return &ContentAuthError{Reason: "no " + GatewayAuthScheme + " authorization"}
	}
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return &ContentAuthError{Reason: "malformed authorization"}
	}
	unix, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return &ContentAuthError{Reason: "malformed time"}
	}
	if d := now.Sub(time.Unix(unix, 0)); d > ContentAuthSkew || d < -ContentAuthSkew {
		return &ContentAuthError{Reason: "request time outside " + ContentAuthSkew.String() + " of the node's clock"}
	}
	pub, err := gatewayKey(parts[0], keys)
	if err != nil {
		return err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return &ContentAuthError{Reason: "malformed signature"}
	}
	if !ed25519.Verify(pub, GatewaySigningBytes(r.Method, r.URL.Path, r.URL.RawQuery, unix), sig) {
		return &ContentAuthError{}
	}
	return nil
}

// gatewayKey resolves a base64url key id against keys.
func gatewayKey(enc string, keys payment.GatewayKeys) (ed25519.PublicKey, error) {
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	var id payment.KeyID
	if err != nil || len(raw) != len(id) {
		return nil, &ContentAuthError{Reason: "malformed key id"}
	}
	copy(id[:], raw)
	pub, ok := keys.GatewayKey(id)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return nil, &ContentAuthError{Reason: "unknown gateway key"}
	}
	return ed25519.PublicKey(pub), nil
}

// Grant lets Node fetch CID from other nodes' HTTP ports until Expires:
// with Scope GrantDAG its whole DAG, with GrantBlock the one raw block.
type Grant struct {
	Node    string
	CID     string
	Scope   string
	Expires time.Time
}

func grantSigningBytes(node, cid, scope string, expires int64) []byte {
	return []byte(GrantPrefix + node + "\n" + cid + "\n" + scope + "\n" + strconv.FormatInt(expires, 10))
}

// SignGrant returns the GrantHeader value of g signed with key.
func SignGrant(g Grant, key ed25519.PrivateKey) string {
	id := payment.KeyIDOf(key.Public().(ed25519.PublicKey))
	exp := g.Expires.Unix()
	sig := ed25519.Sign(key, grantSigningBytes(g.Node, g.CID, g.Scope, exp))
	return g.Node + ":" + g.CID + ":" + g.Scope + ":" + strconv.FormatInt(exp, 10) + ":" +
		base64.RawURLEncoding.EncodeToString(id[:]) + ":" + base64.RawURLEncoding.EncodeToString(sig)
}

// VerifyGrant checks a GrantHeader value at now against keys and returns
// the grant. Errors are *ContentAuthError.
func VerifyGrant(v string, now time.Time, keys payment.GatewayKeys) (Grant, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 6 || parts[0] == "" || parts[1] == "" || (parts[2] != GrantDAG && parts[2] != GrantBlock) {
		return Grant{}, &ContentAuthError{Reason: "malformed grant"}
	}
	scope := parts[2]
	parts = append(parts[:2], parts[3:]...)
	exp, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return Grant{}, &ContentAuthError{Reason: "malformed grant expiry"}
	}
	if now.Unix() > exp {
		return Grant{}, &ContentAuthError{Reason: "grant expired"}
	}
	pub, err := gatewayKey(parts[3], keys)
	if err != nil {
		return Grant{}, err
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[4])
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Grant{}, &ContentAuthError{Reason: "malformed grant signature"}
	}
	if !ed25519.Verify(pub, grantSigningBytes(parts[0], parts[1], scope, exp), sig) {
		return Grant{}, &ContentAuthError{Reason: "grant signature does not verify"}
	}
	return Grant{Node: parts[0], CID: parts[1], Scope: scope, Expires: time.Unix(exp, 0)}, nil
}
