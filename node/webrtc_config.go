package node

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Limits of the WebRTC transport.
const (
	// MaxSDPBytes is the largest SDP offer AcceptOffer reads.
	MaxSDPBytes = 16 << 10
	// DataChannelMessageSize is the size of the first data-channel
	// messages of a response, and the largest message sent to a peer that
	// announces no larger max-message-size; browsers accept it everywhere.
	DataChannelMessageSize = 16 << 10
	// MaxDataChannelMessageSize is the largest data-channel message the
	// node sends, to a peer whose SDP announces a max-message-size at
	// least this large (Chromium announces 262144). Message sizes double
	// from DataChannelMessageSize up to it, so the first bytes of a
	// response leave at once and the bulk goes in few large messages.
	MaxDataChannelMessageSize = 256 << 10
)

// WebRTCConfig configures the node's WebRTC peer. The zero value serves
// WebRTC on 127.0.0.1 with host candidates only.
type WebRTCConfig struct {
	// Disabled turns WebRTC off: AcceptOffer fails with ErrWebRTCDisabled
	// and the node's record does not offer it.
	Disabled bool
	// Addr is the one UDP address every peer connection shares (ICE UDP
	// mux). Default "127.0.0.1:0". Behind NAT, forward this UDP port and
	// set PublicIPs, or configure a STUN server in ICEServers.
	Addr string
	// PublicIPs, when set, replace the host candidates' addresses in
	// answers (1:1 NAT with a forwarded port). Default none.
	PublicIPs []string
	// ICEServers are the STUN/TURN servers used to gather server-reflexive
	// and relay candidates. Default none: host candidates only, which is
	// all loopback and public hosts need.
	ICEServers []webrtc.ICEServer
	// MaxPeers is the number of peer connections served at once; offers
	// beyond it are refused with ErrTooManyPeers. Default 256.
	MaxPeers int
	// IdleTimeout closes a peer connection with no open data channel for
	// this long (also one that never connects), and fails a data channel
	// whose reader has not drained its buffer for this long. Default 30s.
	IdleTimeout time.Duration
}

func (c WebRTCConfig) normalize() (WebRTCConfig, error) {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:0"
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = 256
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	if c.MaxPeers < 0 || c.IdleTimeout < 0 {
		return c, &ConfigError{Field: "WebRTC", Reason: "limits must not be negative"}
	}
	return c, nil
}
