package nodeproto

// WebRTC signaling: the coordinator relays a browser's SDP offer to the
// node over the node's authenticated WebSocket and returns the node's
// answer. Nodes open no signaling endpoint of their own.
const (
	MsgWebRTCOffer  = "webrtc-offer"  // coordinator → node
	MsgWebRTCAnswer = "webrtc-answer" // node → coordinator, one per offer
)

// MaxSDPBytes bounds an offer or answer relayed through the coordinator.
const MaxSDPBytes = 16 << 10

// WebRTCOffer is a browser's offer relayed to a node.
type WebRTCOffer struct {
	ID  string `json:"id"`  // echoed in the answer
	SDP string `json:"sdp"` // the offer, at most MaxSDPBytes
}

// WebRTCAnswer is a node's reply to a WebRTCOffer: the answer, or an error
// with a stable code.
type WebRTCAnswer struct {
	ID    string `json:"id"`
	SDP   string `json:"sdp,omitempty"`
	Error string `json:"error,omitempty"` // human-readable
	Code  string `json:"code,omitempty"`  // one of the OfferCode* values
}

// Codes of a refused offer.
const (
	OfferCodeBadSDP   = "bad-sdp"  // malformed or oversized offer
	OfferCodeBusy     = "busy"     // the node serves as many peers as it will
	OfferCodeDisabled = "disabled" // the node does not serve WebRTC
	OfferCodeInternal = "internal" // anything else
)
