package node

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/gateway"

	"github.com/verity-cdn/verity/internal/nodeproto"
)

// WellKnownRecordPath serves the node's current signed record.
const WellKnownRecordPath = "/.well-known/verity/node"

// newRouter builds the handler shared by the HTTP server and the
// WebTransport streams.
func (n *Node) newRouter() (http.Handler, error) {
	bsvc := blockservice.New(n.bs, offline.Exchange(n.bs))
	backend, err := gateway.NewBlocksBackend(bsvc)
	if err != nil {
		return nil, err
	}
	gw := gateway.NewHandler(gateway.Config{
		DeserializedResponses: false,
		NoDNSLink:             true,
		DisableHTMLErrors:     true,
		MetricsRegistry:       n.metrics.registry,
	}, backend)

	r := chi.NewRouter()
	r.Use(cors)
	var ipfs http.Handler = rawFromDisk(gw)
	if lim := newEgressLimiter(n.cfg.MaxEgress); lim != nil {
		ipfs = limitEgress(lim, ipfs)
	}
	r.Handle("/ipfs/*", ipfs)
	r.Get(WellKnownRecordPath, n.serveRecord)
	r.Get(nodeproto.ProofPath, n.serveProof)
	r.Get("/healthz", n.serveHealth)
	r.Get(StatusPath, n.serveStatus)
	r.Get("/", n.serveStatusPage)
	r.Method(http.MethodGet, "/metrics", n.metrics.handler())
	return r, nil
}

// rawFromDisk makes a request for one raw block (format=raw, or an Accept
// of application/vnd.ipld.raw) read it from the disk, not from the
// blocks the store keeps in memory: the coordinator's audits ask for
// blocks that way, and an audit must find a block damaged on disk.
func rawFromDisk(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("format") == "raw" || strings.Contains(r.Header.Get("Accept"), "application/vnd.ipld.raw") {
			r = r.WithContext(fromDisk(r.Context()))
		}
		next.ServeHTTP(w, r)
	})
}

// cors lets any origin GET content: it is public and clients verify it.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", "Content-Type, Content-Length, Content-Range, Etag, X-Ipfs-Roots, X-Ipfs-Path, X-Stream-Error")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Accept, Range, If-None-Match, Cache-Control")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (n *Node) serveRecord(w http.ResponseWriter, r *http.Request) {
	rec := n.Record()
	js, err := rec.Marshal()
	if err != nil {
		http.Error(w, "record unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(js)
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(struct {
		OK bool   `json:"ok"`
		ID string `json:"id"`
	}{true, n.id})
}
