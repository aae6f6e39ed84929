package coordinator

import (
	"errors"

	"github.com/coder/websocket"

	"github.com/verity-cdn/verity/internal/nodeproto"
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
	// ErrOperator: a join without a valid operator credential, or a
	// session whose operator was revoked (StatusOperatorRefused).
	ErrOperator = errors.New("coordinator: operator credential refused")
	// ErrOperatorExists: creating an operator whose name is taken.
	ErrOperatorExists = errors.New("coordinator: operator already exists")
	// ErrOperatorName: an invalid operator name.
	ErrOperatorName = errors.New("coordinator: invalid operator name")
	// ErrURLProof: a URL of the node's record is not on an allowed
	// address or does not answer with the node's key (StatusURLRefused).
	ErrURLProof = errors.New("coordinator: URL not proven")
	// ErrAudit: a node did not prove it holds a root (*AuditError).
	ErrAudit = errors.New("coordinator: audit failed")
	// ErrUnknownOperator: revoking an operator that has no credential.
	ErrUnknownOperator = errors.New("coordinator: unknown operator")
)

// Application close codes (RFC 6455 §7.4.2 reserves 4000–4999 for them).
const (
	StatusHeartbeatTimeout websocket.StatusCode = 4000
	StatusSuperseded       websocket.StatusCode = 4001
	StatusJoinTimeout      websocket.StatusCode = 4002
	// StatusOperatorRefused: no valid operator credential, or the
	// operator was revoked (nodeproto.CloseOperatorRefused).
	StatusOperatorRefused websocket.StatusCode = nodeproto.CloseOperatorRefused
	// StatusURLRefused: a URL of the record is not the node's
	// (URLProver), or the record's URLs changed within a session.
	StatusURLRefused websocket.StatusCode = 4004
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
	case errors.Is(err, ErrOperator):
		code = StatusOperatorRefused
	case errors.Is(err, ErrURLProof):
		code = StatusURLRefused
	}
	reason := err.Error()
	if len(reason) > 123 {
		reason = reason[:120] + "..."
	}
	return code, reason
}
