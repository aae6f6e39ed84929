package node

import (
	"context"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/wire"
)

// wireToHTTP turns a wire request into the request the shared handler
// serves, or returns the status and message refusing it. Streams and
// channels carry content only: the node's other HTTP endpoints (metrics,
// health, record) stay on its HTTP port, where an operator can restrict
// them.
func (n *Node) wireToHTTP(ctx context.Context, req *wire.Request, remote string) (*http.Request, int, string) {
	u, err := url.ParseRequestURI(req.Target)
	if err != nil {
		return nil, http.StatusBadRequest, "bad target"
	}
	if req.Method != http.MethodGet {
		return nil, http.StatusMethodNotAllowed, "only GET is served on streams"
	}
	if !strings.HasPrefix(path.Clean(u.Path), "/ipfs/") && u.Path != nodeproto.ProofPath {
		return nil, http.StatusNotFound, "only /ipfs/ content is served on streams"
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return nil, http.StatusInternalServerError, "internal error"
	}
	hr.URL = u
	hr.RequestURI = req.Target
	hr.Host = "node"
	hr.RemoteAddr = remote
	for name, value := range req.Header {
		switch name {
		case "accept", "if-none-match", "cache-control":
			hr.Header.Set(name, value)
		}
	}
	return hr, 0, ""
}

// responseHead is the wire head of a response with status code: the
// forwarded headers of hdr, lower-cased, without any that would break the
// framing.
func responseHead(code int, hdr http.Header) *wire.Response {
	h := wire.Header{}
	for _, name := range forwardedHeaders {
		if v := hdr.Get(name); v != "" && !strings.ContainsAny(v, "\r\n") {
			h[strings.ToLower(name)] = v
		}
	}
	return &wire.Response{Status: code, Header: h}
}
