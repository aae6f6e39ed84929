package gateway

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/verify"
)

// serveFallback serves the trustless CAR response for
// /.verity/v1/ipfs/<root>/<path>?format=car&dag-scope=entity[&entity-bytes=a:b]
// of the site's current root (or a recent one). Every block is verified
// (internal/verify) before it is relayed. A node that fails before the
// headers are sent is replaced by the next one; one that fails after is
// replaced at the first block not yet sent; when no node can finish, the
// response is aborted (no clean end), never cut short.
//
// Caching: the response carries "Cache-Control: public, max-age=...,
// immutable". Content-Length is sent only when the whole CAR was verified
// before the headers (small responses); a larger one is streamed, and a
// failure aborts it, which a cache cannot take for a complete response.
// The worker verifies the CAR again in any case.
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
	skip := map[string]bool{}
	buf := make([]byte, copyBufSize)
	var (
		f        *entityFetch
		complete bool
		failed   *NodeError // the last node that failed after it was found
	)
	for {
		f, err = g.fetchEntity(r, nodes, req, skip, fetchMode{keepCAR: true})
		if err != nil {
			g.fail(w, r, retryError(err, failed, req.Target()))
			return
		}
		if r.Method == http.MethodHead {
			break
		}
		// Hold the headers until the CAR is complete or holds data.
		complete, err = f.prefetchCAR(buf, fallbackHoldBytes)
		if err == nil {
			break
		}
		f.close()
		if r.Context().Err() != nil {
			return
		}
		failed = f.failure(reasonVerify, err)
		g.nodeFailure(r, failed)
		skip[f.node.id] = true
	}
	defer func() { f.close() }()
	roots := f.car.roots
	h := w.Header()
	h.Set("Content-Type", carAccept)
	h.Set("Cache-Control", "public, max-age=29030400, immutable")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Vary", "Accept")
	h.Set("Server-Timing", fmt.Sprintf(`verity;desc="gateway",node;desc=%q`, f.node.id))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if complete {
		var body bytes.Buffer
		cw, _ := car.NewWriter(&body, roots)
		for _, s := range f.car.take() {
			_ = cw.Put(s.c, s.data)
		}
		h.Set("Content-Length", strconv.Itoa(body.Len()))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body.Bytes())
		return
	}
	w.WriteHeader(http.StatusOK)
	cw, err := car.NewWriter(w, roots)
	if err != nil {
		return
	}
	sent := 0
	for {
		for _, s := range f.car.take() {
			if err := cw.Put(s.c, s.data); err != nil {
				return // the client is gone
			}
			sent++
		}
		rerr := f.advanceCAR(buf)
		if rerr == nil {
			continue
		}
		if rerr == io.EOF && !f.car.broken {
			for _, s := range f.car.take() {
				if err := cw.Put(s.c, s.data); err != nil {
					return
				}
			}
			return
		}
		// The node failed: resume from the next one at the first block
		// not sent.
		f.close()
		if r.Context().Err() != nil {
			return
		}
		g.nodeFailure(r, f.failure(reasonVerify, rerr))
		skip[f.node.id] = true
		for _, s := range f.car.take() { // verified before the failure
			if err := cw.Put(s.c, s.data); err != nil {
				return
			}
			sent++
		}
		next, err := g.fetchEntity(r, nodes, req, skip, fetchMode{keepCAR: true, sentCAR: sent})
		if err == nil && !next.car.sameRoots(roots) {
			next.close()
			err = fmt.Errorf("%w: node %s names other roots", ErrNoNode, next.node.id)
		}
		if err != nil {
			g.log.Warn("aborting CAR: no node could finish it", "host", r.Host, "path", r.URL.Path, "blocks", sent, "err", err)
			panic(http.ErrAbortHandler)
		}
		f = next
	}
}

// fallbackHoldBytes is how much verified CAR the fallback holds before it
// sends the headers: a node that fails before then is replaced with
// nothing sent, and a CAR complete by then is sent with Content-Length.
const fallbackHoldBytes = 256 << 10

// prefetchCAR verifies f's CAR until it is complete or at least hold
// bytes of blocks are held; complete reports the former.
func (f *entityFetch) prefetchCAR(buf []byte, hold int) (complete bool, err error) {
	for f.car.heldBytes() < hold {
		switch err := f.advanceCAR(buf); {
		case err == io.EOF && !f.car.broken:
			return true, nil
		case err == io.EOF:
			return false, f.car.err
		case err != nil:
			return false, err
		}
	}
	return false, nil
}

// advanceCAR verifies more of f's CAR; io.EOF once all of it is.
func (f *entityFetch) advanceCAR(buf []byte) error {
	if f.car.broken {
		return f.car.err
	}
	if f.entity.Kind == verify.KindDirectory {
		return io.EOF // Entity verified it to its end
	}
	_, err := f.vr.Read(buf)
	if err == nil && f.car.broken {
		return f.car.err
	}
	return err
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
