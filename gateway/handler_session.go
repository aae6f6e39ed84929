package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/verity-cdn/verity/internal/noderecord"
)

// Paths of the worker API on every site origin.
const (
	SessionPath    = "/.verity/v1/session"
	ReportPath     = "/.verity/v1/report"
	FallbackPrefix = "/.verity/v1/ipfs"
)

// SessionVersion is the version field of session responses.
const SessionVersion = 1

// Session is the body of GET /.verity/v1/session.
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
	// WebRTC: the node answers offers posted to WebRTCPrefix + ID.
	WebRTC bool `json:"webrtc,omitempty"`
}

func (g *Gateway) serveSession(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	nodes, err := g.nodesFor(r, site.Root)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	s := Session{
		Version:  SessionVersion,
		Site:     site.Name,
		Root:     site.Root,
		TTL:      int(g.cfg.SessionTTL.Seconds()),
		Fallback: FallbackPrefix,
		Nodes:    make([]SessionNode, 0, len(nodes)),
	}
	if err := g.voucherFor(&s, site, r.URL.Query().Get("key"), clientAddr(r)); err != nil {
		http.Error(w, "bad session key", http.StatusBadRequest)
		return
	}
	for _, n := range nodes {
		sn := SessionNode{
			ID:           n.id,
			WebTransport: n.rec.Record.WebTransport,
			CertHashes:   make([]string, 0, len(n.rec.Record.CertHashes)),
			HTTP:         n.rec.Record.HTTP,
			Record:       n.rec,
			WebRTC:       n.rec.Record.WebRTC,
		}
		for _, ch := range n.rec.Record.CertHashes {
			sn.CertHashes = append(sn.CertHashes, base64.StdEncoding.EncodeToString(ch.SHA256))
		}
		s.Nodes = append(s.Nodes, sn)
	}
	body, err := json.Marshal(s)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append(body, '\n'))
	}
}
