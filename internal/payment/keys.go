package payment

import "github.com/verity-cdn/verity/internal/base32"

// KeyID names a gateway signing key: the first 8 bytes of the SHA-256 of
// the ed25519 public key.
type KeyID [8]byte

// KeyIDOf returns the KeyID of a gateway public key.
func KeyIDOf(pub PublicKey) KeyID {
	h := sum256(pub)
	var id KeyID
	copy(id[:], h[:8])
	return id
}

// GatewayKeys resolves a voucher's KeyID to the gateway's public key.
// Nodes and the ledger learn the current keys from the coordinator.
type GatewayKeys interface {
	GatewayKey(id KeyID) (PublicKey, bool)
}

// KeySet is a fixed set of gateway public keys.
type KeySet map[KeyID]PublicKey

// NewKeySet returns a KeySet holding pubs.
func NewKeySet(pubs ...PublicKey) KeySet {
	s := make(KeySet, len(pubs))
	for _, p := range pubs {
		s[KeyIDOf(p)] = p
	}
	return s
}

// GatewayKey implements GatewayKeys.
func (s KeySet) GatewayKey(id KeyID) (PublicKey, bool) {
	p, ok := s[id]
	return p, ok
}

var _ GatewayKeys = KeySet(nil)

// NodeKey is a node's ed25519 public key, the identity receipts are made
// out to.
type NodeKey [32]byte

// SessionKey is the ed25519 public key a worker generates for one session;
// it signs the session's receipts.
type SessionKey [32]byte

// String returns the node id: "n" and the lower-case unpadded base32 of the
// key, as internal/noderecord.NodeIDFromKey.
func (k NodeKey) String() string { return "n" + base32.Encode(k[:]) }

// ParseNodeID is the inverse of NodeKey.String: another spelling of the
// key (upper case, unused bits set) is malformed.
func ParseNodeID(id string) (NodeKey, error) {
	var k NodeKey
	if len(id) != 53 || id[0] != 'n' {
		return k, errorf("node id", "", ErrMalformed)
	}
	b, err := base32.Decode(id[1:])
	if err != nil || len(b) != 32 {
		return k, errorf("node id", "", ErrMalformed)
	}
	copy(k[:], b)
	return k, nil
}

// String returns the session key in lower-case unpadded base32, prefixed
// with "s".
func (k SessionKey) String() string { return "s" + base32.Encode(k[:]) }

// ParseSessionKey is the inverse of SessionKey.String, as ParseNodeID.
func ParseSessionKey(s string) (SessionKey, error) {
	var k SessionKey
	if len(s) != 53 || s[0] != 's' {
		return k, errorf("session key", "", ErrMalformed)
	}
	b, err := base32.Decode(s[1:])
	if err != nil || len(b) != 32 {
		return k, errorf("session key", "", ErrMalformed)
	}
	copy(k[:], b)
	return k, nil
}
