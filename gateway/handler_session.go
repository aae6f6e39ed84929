package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/payment"
)

// Paths of the worker API on every site origin.
const (
	SessionPath    = "/.verity/v1/session"
	ReportPath     = "/.verity/v1/report"
	FallbackPrefix = "/.verity/v1/ipfs"
)

func (g *Gateway) serveSession(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	nodes, err := g.nodesFor(r, site.Root)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	// A session names at most as many nodes as a voucher can.
	nodes = nodes[:min(len(nodes), payment.MaxVoucherNodes)]
	s := api.Session{
		Version:  api.SessionVersion,
		Site:     site.Name,
		Root:     site.Root,
		TTL:      int(g.cfg.SessionTTL.Seconds()),
		Fallback: FallbackPrefix,
		Nodes:    make([]api.SessionNode, 0, len(nodes)),
	}
	if err := g.voucherFor(r.Context(), &s, site, r.URL.Query().Get("key"), clientAddr(r), nodes); err != nil {
		http.Error(w, "bad session key", http.StatusBadRequest)
		return
	}
	for _, n := range nodes {
		sn := api.SessionNode{
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
