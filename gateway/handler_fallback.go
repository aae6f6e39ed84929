package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/verity-cdn/verity/internal/verify"
)

// serveFallback streams the trustless CAR response for
// /.verity/v1/ipfs/<root>/<path>?format=car&dag-scope=entity[&entity-bytes=a:b]
// from the first node that answers 200. It does not verify: the worker does.
// Only the site's current root (or a recent one) is served.
func (g *Gateway) serveFallback(w http.ResponseWriter, r *http.Request, site Site) {
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	req, err := parseFallback(r.URL)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if root := req.Root.String(); !g.rootAllowed(site, root) {
		g.fail(w, r, &RequestError{Kind: ErrForbidden, Detail: fmt.Sprintf("%s is not a root of site %q", root, site.Name)})
		return
	}
	nodes, err := g.nodesFor(r, req.Root.String())
	if err != nil {
		g.fail(w, r, err)
		return
	}
	target := req.Target()
	attempts, notFound := 0, false
	var last error
	for _, n := range nodes {
		if attempts == g.cfg.MaxNodeAttempts {
			break
		}
		attempts++
		c, err := g.call(r.Context(), n, target)
		if err != nil {
			if errors.Is(err, errNodeNotFound) {
				notFound = true
				continue
			}
			if r.Context().Err() != nil {
				return
			}
			g.nodeFailure(err.(*NodeError))
			last = err
			continue
		}
		g.relayCAR(w, r, c)
		return
	}
	g.fail(w, r, noNodeError(notFound, last, target))
}

// relayCAR copies a node's CAR response; a failure mid-body aborts ours.
func (g *Gateway) relayCAR(w http.ResponseWriter, r *http.Request, c *nodeCall) {
	defer c.close()
	h := w.Header()
	ct := c.resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/vnd.ipld.car") {
		ct = carAccept
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", "public, max-age=29030400, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept")
	h.Set("Server-Timing", fmt.Sprintf(`verity;desc="gateway",node;desc=%q`, c.node.id))
	if cl := c.resp.Header.Get("Content-Length"); cl != "" {
		h.Set("Content-Length", cl)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	buf := make([]byte, copyBufSize)
	for {
		n, rerr := c.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
		}
		if rerr == io.EOF {
			return
		}
		if rerr != nil {
			if r.Context().Err() != nil {
				return
			}
			g.nodeFailure(c.failure(reasonUnreachable, rerr))
			panic(http.ErrAbortHandler)
		}
	}
}

// parseFallback parses a fallback URL into the verify.Request it names:
// FallbackPrefix stands for /ipfs, and the rest is a node's target,
// parsed by verify.ParseTarget (docs/protocol.md §2, §6.3).
func parseFallback(u *url.URL) (verify.Request, error) {
	rest, ok := strings.CutPrefix(u.EscapedPath(), FallbackPrefix+"/")
	if !ok {
		return verify.Request{}, badRequest("not under %s/", FallbackPrefix)
	}
	target := "/ipfs/" + rest
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	req, err := verify.ParseTarget(target)
	if err != nil {
		return verify.Request{}, &RequestError{Kind: ErrBadRequest, Detail: err.Error()}
	}
	return req, nil
}
