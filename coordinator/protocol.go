package coordinator

import (
	"encoding/hex"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// ConnectPath is where nodes open their WebSocket to the coordinator.
const ConnectPath = "/v1/nodes/connect"

// JoinPrefix separates join signatures from anything else the node key
// signs (node records use noderecord.SignaturePrefix).
const JoinPrefix = "verity-node-join/1\n"

// NonceSize is the size of a challenge nonce.
const NonceSize = 32

// Message types.
const (
	MsgChallenge = "challenge" // coordinator → node, first message
	MsgJoin      = "join"      // node → coordinator, the answer
	MsgWelcome   = "welcome"   // coordinator → node, join accepted
	MsgHeartbeat = "heartbeat" // node → coordinator, every heartbeat interval
)

// Message is one WebSocket text message: a type and the matching field.
type Message struct {
	Type      string        `json:"type"`
	Challenge *Challenge    `json:"challenge,omitempty"`
	Join      *Join         `json:"join,omitempty"`
	Welcome   *Welcome      `json:"welcome,omitempty"`
	Heartbeat *Heartbeat    `json:"heartbeat,omitempty"`
	Offer     *WebRTCOffer  `json:"offer,omitempty"`  // MsgWebRTCOffer
	Answer    *WebRTCAnswer `json:"answer,omitempty"` // MsgWebRTCAnswer
}

// Challenge is what a node signs to prove it holds its key.
type Challenge struct {
	Nonce       []byte    `json:"nonce"`       // NonceSize random bytes, base64 in JSON
	Coordinator string    `json:"coordinator"` // id of the coordinator that issued it
	Expires     time.Time `json:"expires"`     // answers after this are refused
}

// Join answers a Challenge.
type Join struct {
	Node      string            `json:"node"`      // the node id claimed
	Challenge Challenge         `json:"challenge"` // echoed unchanged
	Signature []byte            `json:"signature"` // ed25519 over JoinSigningBytes(Challenge, Node)
	Record    noderecord.Signed `json:"record"`    // the node's current signed record
	Status    *Heartbeat        `json:"status,omitempty"`
}

// Welcome accepts a join.
type Welcome struct {
	Node        string `json:"node"`
	Session     string `json:"session"`     // id of this connection's session
	HeartbeatMS int64  `json:"heartbeatMs"` // send a heartbeat this often
}

// Heartbeat is the node's periodic status report.
type Heartbeat struct {
	Capacity int64   `json:"capacity"`         // bytes of storage offered
	FreeDisk int64   `json:"freeDisk"`         // bytes still free
	Blocks   int64   `json:"blocks"`           // blocks stored
	Load     float64 `json:"load"`             // 0 idle … 1 saturated
	Version  string  `json:"version"`          // software version
	Region   string  `json:"region,omitempty"` // operator-declared region, e.g. "NL" or "eu-west"
	// Record is the node's current signed record when it changed (e.g.
	// after a certificate rotation); omitted otherwise.
	Record *noderecord.Signed `json:"record,omitempty"`
}

// JoinSigningBytes returns what a node signs to answer ch as node:
//
//	"verity-node-join/1\n" coordinator "\n" hex(nonce) "\n" expires(RFC 3339, UTC, ns) "\n" node
func JoinSigningBytes(ch Challenge, node string) []byte {
	b := make([]byte, 0, len(JoinPrefix)+len(ch.Coordinator)+2*len(ch.Nonce)+len(node)+40)
	b = append(b, JoinPrefix...)
	b = append(b, ch.Coordinator...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, ch.Nonce)
	b = append(b, '\n')
	b = ch.Expires.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, '\n')
	b = append(b, node...)
	return b
}
