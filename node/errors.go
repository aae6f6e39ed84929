package node

import (
	"errors"

	"github.com/ipfs/go-cid"
)

// Sentinel errors; match them with errors.Is.
var (
	// ErrConfig: a Config field is invalid.
	ErrConfig = errors.New("node: invalid config")
	// ErrBadCAR: a CAR could not be imported (malformed, or a block does
	// not match its CID, or a block is too large). Nothing was stored.
	ErrBadCAR = errors.New("node: bad CAR")
	// ErrClosed: the node is closed.
	ErrClosed = errors.New("node: closed")
	// ErrStorageFull: a pin order refused because the node stores its
	// Config.Capacity (--max-storage) already.
	ErrStorageFull = errors.New("node: storage full (--max-storage reached)")
	// ErrCorruptBlock: a stored block no longer matches its CID (damaged
	// on disk). It is not served; see CorruptBlockError.
	ErrCorruptBlock = errors.New("node: stored block is corrupt")
	// ErrRunning: Run was called twice.
	ErrRunning = errors.New("node: already running")
	// ErrNoCoordinator: settling needs a joined coordinator.
	ErrNoCoordinator = errors.New("node: no coordinator to settle with")
	// ErrSettleRefused: the coordinator refused a settlement batch as a
	// whole; see SettleError.
	ErrSettleRefused = errors.New("node: settlement refused")
	// ErrNoPayments: CoordClient.Settle while the coordinator has not
	// announced payments in this session, or no session is up.
	ErrNoPayments = errors.New("node: coordinator does not take settlements")
	// ErrSessionEnded: the coordinator session ended before the
	// coordinator answered.
	ErrSessionEnded = errors.New("node: coordinator session ended before the answer")
	// ErrCoordinatorProtocol: the coordinator sent a malformed message or
	// one out of order; the session ends and the client reconnects.
	ErrCoordinatorProtocol = errors.New("node: unexpected message from the coordinator")
	// ErrOperatorRefused: the coordinator refused the operator credential
	// (none, wrong, or revoked); see CoordClientConfig.OperatorToken.
	ErrOperatorRefused = errors.New("node: the coordinator refused the operator credential")
)

// SettleError carries the coordinator's refusal code
// (nodeproto.SettleCode* or a payment code).
type SettleError struct{ Code string }

func (e *SettleError) Error() string { return "node: settlement refused: " + e.Code }
func (e *SettleError) Unwrap() error { return ErrSettleRefused }

// ConfigError names the invalid Config field.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return "node: config " + e.Field + ": " + e.Reason }
func (e *ConfigError) Unwrap() error { return ErrConfig }

// CorruptBlockError names a stored block that failed its hash check.
type CorruptBlockError struct{ CID cid.Cid }

func (e *CorruptBlockError) Error() string {
	return "node: stored block " + e.CID.String() + " is corrupt"
}
func (e *CorruptBlockError) Unwrap() error { return ErrCorruptBlock }

// WebRTC errors, returned by AcceptOffer.
var (
	// ErrWebRTCDisabled: the node does not serve WebRTC.
	ErrWebRTCDisabled = errors.New("node: webrtc disabled")
	// ErrSDPTooLarge: the offer is larger than MaxSDPBytes.
	ErrSDPTooLarge = errors.New("node: sdp offer too large")
	// ErrBadSDP: the offer is not a valid SDP offer with a data channel.
	ErrBadSDP = errors.New("node: malformed sdp offer")
	// ErrTooManyPeers: the node serves WebRTCConfig.MaxPeers peers already.
	ErrTooManyPeers = errors.New("node: too many webrtc peers")
)
