package api

import "github.com/verity-cdn/verity/internal/noderecord"

// SessionVersion is the version field of session responses.
const SessionVersion = 1

// Session is the body of GET /.verity/v1/session on a site origin: the
// site's root and the nodes a worker should fetch it from.
type Session struct {
	Version  int           `json:"version"`
	Site     string        `json:"site"`
	Root     string        `json:"root"`
	TTL      int           `json:"ttl"` // seconds the worker may reuse this session
	Fallback string        `json:"fallback"`
	Nodes    []SessionNode `json:"nodes"`

	// Payments, when the request named a session key (?key=s...): the
	// account paying for the site and a voucher (standard base64 of its
	// binary encoding) for that key, or PaymentError ("account_frozen")
	// when no voucher is issued.
	Account        string `json:"account,omitempty"`
	Voucher        string `json:"voucher,omitempty"`
	VoucherExpires int64  `json:"voucherExpires,omitempty"` // Unix seconds
	PaymentError   string `json:"paymentError,omitempty"`
}

// SessionNode is one node in a Session, preferred first.
type SessionNode struct {
	ID           string            `json:"id"`
	WebTransport string            `json:"webtransport"`
	CertHashes   []string          `json:"certHashes"` // base64 SHA-256, current first
	HTTP         string            `json:"http"`
	Record       noderecord.Signed `json:"record"`
	// WebRTC: the node answers offers posted to
	// /.verity/v1/webrtc/<ID>.
	WebRTC bool `json:"webrtc,omitempty"`
}

// Report is the body of POST /.verity/v1/report: a worker telling the
// gateway that a node failed it.
type Report struct {
	Node   string `json:"node"`
	CID    string `json:"cid,omitempty"`
	Reason string `json:"reason"` // one of ReportReasons
	Detail string `json:"detail,omitempty"`
}

// ReportReasons are the accepted values of Report.Reason.
var ReportReasons = []string{"bad-block", "unreachable", "timeout", "protocol"}
