package coordinator

import (
	"errors"

	"github.com/coder/websocket"
)

// Sentinel errors; match them with errors.Is. Each join or heartbeat refusal
// closes the node's WebSocket with the code and reason closeFor gives.
var (
	ErrClosed            = errors.New("coordinator: closed")
	ErrMalformed         = errors.New("coordinator: malformed message")
	ErrProtocol          = errors.New("coordinator: unexpected message")
	ErrBinary            = errors.New("coordinator: binary messages are not accepted")
	ErrChallengeExpired  = errors.New("coordinator: challenge expired")
	ErrChallengeReplayed = errors.New("coordinator: challenge already used")
	ErrChallengeMismatch = errors.New("coordinator: challenge was not issued on this connection")
	ErrSignature         = errors.New("coordinator: invalid join signature")
	ErrRecord            = errors.New("coordinator: invalid node record")
	ErrNodeMismatch      = errors.New("coordinator: record belongs to another node")
	ErrHeartbeatTimeout  = errors.New("coordinator: heartbeat timeout")
	ErrSuperseded        = errors.New("coordinator: superseded by a newer session")
	ErrJoinTimeout       = errors.New("coordinator: no join before the challenge expired")
	// ErrNodeAuth: a node-signed HTTP request that does not authenticate
	// (AuthenticateNode).
	ErrNodeAuth = errors.New("coordinator: node request not authenticated")
	// ErrTooFewNodes: fewer live nodes than the replicas a placement wants.
	ErrTooFewNodes = errors.New("coordinator: too few live nodes")
)

// Application close codes (RFC 6455 §7.4.2 reserves 4000–4999 for them).
const (
	StatusHeartbeatTimeout websocket.StatusCode = 4000
	StatusSuperseded       websocket.StatusCode = 4001
	StatusJoinTimeout      websocket.StatusCode = 4002
)

// closeFor maps an error to the close code and reason sent to the node.
// Reasons fit the 123 bytes a close frame allows.
func closeFor(err error) (websocket.StatusCode, string) {
	code := websocket.StatusInternalError
	switch {
	case errors.Is(err, ErrClosed):
		code = websocket.StatusGoingAway
	case errors.Is(err, ErrMalformed):
		code = websocket.StatusInvalidFramePayloadData
	case errors.Is(err, ErrProtocol):
		code = websocket.StatusProtocolError
	case errors.Is(err, ErrBinary):
		code = websocket.StatusUnsupportedData
	case errors.Is(err, ErrChallengeExpired), errors.Is(err, ErrChallengeReplayed),
		errors.Is(err, ErrChallengeMismatch), errors.Is(err, ErrSignature),
		errors.Is(err, ErrRecord), errors.Is(err, ErrNodeMismatch):
		code = websocket.StatusPolicyViolation
	case errors.Is(err, ErrHeartbeatTimeout):
		code = StatusHeartbeatTimeout
	case errors.Is(err, ErrSuperseded):
		code = StatusSuperseded
	case errors.Is(err, ErrJoinTimeout):
		code = StatusJoinTimeout
	}
	reason := err.Error()
	if len(reason) > 123 {
		reason = reason[:120] + "..."
	}
	return code, reason
}
