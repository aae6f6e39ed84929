package node

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/ipfs/boxo/blockservice"
	"github.com/ipfs/boxo/exchange/offline"
	"github.com/ipfs/boxo/gateway"
	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/wire"
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
		if isRawRequest(r) {
			r = r.WithContext(fromDisk(r.Context()))
		}
		next.ServeHTTP(w, r)
	})
}

// isRawRequest: r asks for one raw block, as the trustless gateway reads
// it: ?format= when given, else the first IPLD type of Accept (boxo takes
// the first of its types; the first application/ type is that one or comes
// before it, so this never says raw when boxo answers otherwise). The
// gateway answers a request for a raw block with that block only,
// whatever else it asks.
func isRawRequest(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return f == "raw"
	}
	for _, h := range r.Header.Values("Accept") {
		for v := range strings.SplitSeq(h, ",") {
			if v = strings.TrimSpace(v); strings.HasPrefix(v, "application/") {
				mt, _, err := mime.ParseMediaType(v)
				return err == nil && mt == "application/vnd.ipld.raw"
			}
		}
	}
	return false
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

// platformOnly guards /ipfs/ on the HTTP port of a node that requires
// payment: visitors pay over WebTransport or WebRTC, and this port serves
// content only to the platform's callers, each proving who it is
// (nodeproto.VerifyGatewayRequest, or a node's signature with its grant).
// Anything else gets 402, as an unpaid stream does.
func (n *Node) platformOnly(next http.Handler) http.Handler {
	if !n.cfg.Payments.Require {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/ipfs/") && r.Method != http.MethodOptions {
			if err := n.authorizePlatform(r); err != nil {
				n.metrics.unpaidRefused.Inc()
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusPaymentRequired)
				_, _ = io.WriteString(w, wire.PaymentRequired+": this node serves paid requests only, over WebTransport or WebRTC with a voucher; on HTTP it serves the platform's signed requests ("+err.Error()+")\n")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// authorizePlatform accepts a request signed by a gateway key the node
// trusts, or one signed by a node that shows the coordinator's grant for
// it and the CID the path starts with.
func (n *Node) authorizePlatform(r *http.Request) error {
	now := n.cfg.Now()
	if strings.HasPrefix(r.Header.Get("Authorization"), nodeproto.GatewayAuthScheme+" ") {
		return nodeproto.VerifyGatewayRequest(r, now, n.pay)
	}
	node, err := nodeproto.VerifyContentRequest(r, now, func(id string) (ed25519.PublicKey, bool) {
		k, err := payment.ParseNodeID(id)
		return ed25519.PublicKey(k[:]), err == nil
	})
	if err != nil {
		return err
	}
	g, err := nodeproto.VerifyGrant(r.Header.Get(nodeproto.GrantHeader), now, n.pay)
	if err != nil {
		return err
	}
	if g.Node != node {
		return &nodeproto.ContentAuthError{Reason: "grant for another node"}
	}
	// The path as served: boxo's handler resolves "..", so a path that
	// climbs out of the granted CID is refused here.
	if p := r.URL.Path; path.Clean(p) != p && path.Clean(p)+"/" != p {
		return &nodeproto.ContentAuthError{Reason: "a path with a grant must be clean"}
	}
	first, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/ipfs/"), "/")
	want, err1 := cid.Decode(g.CID)
	got, err2 := cid.Decode(first)
	if err1 != nil || err2 != nil || !want.Equals(got) {
		return &nodeproto.ContentAuthError{Reason: "grant for other content"}
	}
	if g.Scope == nodeproto.GrantBlock && (rest != "" || !isRawRequest(r)) {
		return &nodeproto.ContentAuthError{Reason: "a block's grant is for its raw block only"}
	}
	return nil
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
