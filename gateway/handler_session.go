package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/redirects"
)

// Paths of the worker API on every site origin.
const (
	SessionPath    = "/.verity/v1/session"
	ReportPath     = "/.verity/v1/report"
	FallbackPrefix = "/.verity/v1/ipfs"
)

// sessionDoc is the session document: api.Session and the site's header
// and redirect rules (protocol.md §6.2).
type sessionDoc struct {
	api.Session
	// Headers are nil (absent) when they could not be fetched, empty
	// when the root has no _headers file.
	Headers *headers.Rules `json:"headers,omitempty"`
	// Redirects are nil (absent) when they could not be fetched, empty
	// when the root has no _redirects file.
	Redirects *redirects.Rules `json:"redirects,omitempty"`
}

// sessionRulesWait bounds the wait for a root's _headers and _redirects
// on its first session: the session does not wait for slow nodes.
const sessionRulesWait = 2 * time.Second

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
	// The site's _headers, for the worker to apply as the gateway does
	// (the wasm client decodes api.Session and ignores the field).
	root, err := cid.Parse(site.Root)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	doc := sessionDoc{Session: s}
	// Both files are fetched at once (a root's first session; later ones
	// find them cached), each within sessionRulesWait.
	var (
		hrules     headers.Rules
		rrules     redirects.Rules
		hok, rok   bool
		herr, rerr error
		wg         sync.WaitGroup
	)
	wg.Go(func() {
		hrules, hok, herr = sessionRules(g, r, &g.headerRules, root, func(r *http.Request) (headers.Rules, error) {
			return g.headersOf(r, site, root, fetchMode{uncharged: true})
		})
	})
	rrules, rok, rerr = sessionRules(g, r, &g.rules, root, func(r *http.Request) (redirects.Rules, error) {
		return g.rulesOf(r, root, nodes, fetchMode{uncharged: true})
	})
	wg.Wait()
	if err := errors.Join(herr, rerr); err != nil {
		g.fail(w, r, err)
		return
	}
	if hok {
		if hrules == nil {
			hrules = headers.Rules{}
		}
		doc.Headers = &hrules
	}
	if rok {
		if rrules == nil {
			rrules = redirects.Rules{}
		}
		doc.Redirects = &rrules
	}
	body, err := json.Marshal(doc)
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
