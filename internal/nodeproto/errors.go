package nodeproto

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	// ErrOfferRefused: a node refused a WebRTC offer; see *OfferError.
	ErrOfferRefused = errors.New("nodeproto: offer refused")
	// ErrContentAuth: a node-signed HTTP request does not authenticate;
	// see *ContentAuthError.
	ErrContentAuth = errors.New("nodeproto: node request not authenticated")
)

// OfferError is a node's refusal of an offer, with the stable code it
// carries on the wire (WebRTCAnswer.Code, Error).
type OfferError struct {
	Code    string // OfferCode*
	Message string
}

func (e *OfferError) Error() string {
	return "nodeproto: offer refused (" + e.Code + "): " + e.Message
}

// Unwrap returns ErrOfferRefused.
func (e *OfferError) Unwrap() error { return ErrOfferRefused }

// ContentAuthError says why VerifyContentRequest refused a request.
type ContentAuthError struct {
	// Reason names the failed check, for the verifier's answer: "no
	// VerityNode authorization", "malformed authorization", "malformed
	// time", "request time outside ...", "malformed signature", "unknown
	// node"; empty when the signature does not verify.
	Reason string
}

func (e *ContentAuthError) Error() string {
	if e.Reason == "" {
		return ErrContentAuth.Error()
	}
	return ErrContentAuth.Error() + ": " + e.Reason
}

// Unwrap returns ErrContentAuth.
func (e *ContentAuthError) Unwrap() error { return ErrContentAuth }
