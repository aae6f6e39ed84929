package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/webfile"
)

// copyBufSize is the chunk size used to stream verified bytes.
const copyBufSize = 64 << 10

// serveContent serves a first visit: the file at the request path under the
// site's root, fetched from a node and verified before a byte is sent.
func (g *Gateway) serveContent(w *statusWriter, r *http.Request, site Site) {
	g.serveContentAt(w, r, site, "")
}

// serveContentAt is serveContent; for a path the site does not have it
// applies the site's _redirects rules and its 404.html (notFound), unless
// this is already a rule's target, served for the path orig.
func (g *Gateway) serveContentAt(w *statusWriter, r *http.Request, site Site, orig string) {
	w.kind = kindAsset
	if !allowMethods(w, r, http.MethodGet, http.MethodHead) {
		return
	}
	root, err := cid.Parse(site.Root)
	if err != nil {
		g.fail(w, r, fmt.Errorf("site %q has an invalid root %q: %w", site.Name, site.Root, err))
		return
	}
	segs, dirPath, err := splitPath(r.URL.EscapedPath())
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if dirPath {
		segs = append(segs, webfile.IndexFile)
	}
	if orig == "" {
		// The site's _headers apply to the path as requested, also
		// when a _redirects rule or 404.html serves another file.
		rules, err := g.headersOf(r, site, root, fetchMode{})
		if err != nil {
			g.fail(w, r, err)
			return
		}
		res := rules.Match(r.URL.EscapedPath())
		w.siteHeaders = &res
	}
	ctype := webfile.ContentType(segs[len(segs)-1])
	isHTML := strings.HasPrefix(ctype, "text/html")
	spec, ranged := webfile.ParseSpec(r.Header.Get("Range"))
	var rng *verify.ByteRange
	if ranged {
		from, to := spec.EntityBytes()
		rng = &verify.ByteRange{From: from, To: to}
	}
	if isHTML {
		w.kind = kindHTML
	}
	key := cacheKey{site: site.Name, root: site.Root, path: "/" + strings.Join(segs, "/")}
	if isHTML && rng == nil {
		if doc, ok := g.cache.get(key); ok {
			g.metrics.cacheHits.Inc()
			g.writeDoc(w, r, doc, "cache", 0)
			return
		}
	}
	nodes, err := g.nodesFor(r, site.Root)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	req := verify.Request{Root: root, Path: segs, Range: rng}
	start := g.cfg.Now()
	skip := map[string]bool{}
	var failed *NodeError // the last node that failed after it was found
	for {
		f, err := g.fetchEntity(r, nodes, req, skip, fetchMode{})
		if err != nil {
			err = retryError(err, failed, key.path)
			switch {
			case !errors.Is(err, ErrNotFound):
			case orig == "":
				g.notFound(w, r, site, root, nodes)
				return
			default:
				err = fmt.Errorf("%w: %s", ErrNotFound, orig)
			}
			g.fail(w, r, err)
			return
		}
		ttfb := g.cfg.Now().Sub(start)
		switch f.entity.Kind {
		case verify.KindFile:
			if rng != nil && !webfile.IfRange(r.Header.Get("If-Range"), etagOf(f.entity)) {
				// The range was for another version: send the whole entity.
				f.close()
				rng, req.Range = nil, nil
				continue
			}
		case verify.KindDirectory:
			f.close()
			if dirPath {
				if orig == "" {
					g.notFound(w, r, site, root, nodes)
					return
				}
				g.fail(w, r, fmt.Errorf("%w: %s", ErrNotFound, orig))
				return
			}
			loc := r.URL.EscapedPath() + "/"
			if r.URL.RawQuery != "" {
				loc += "?" + r.URL.RawQuery
			}
			w.Header().Set("Cache-Control", "no-cache")
			http.Redirect(w, r, loc, http.StatusMovedPermanently)
			return
		default:
			f.close()
			g.fail(w, r, fmt.Errorf("%w: %s is not a file", ErrNotFound, key.path))
			return
		}
		if isHTML && rng == nil && f.entity.Size <= g.cfg.MaxHTMLBytes && r.Method == http.MethodGet {
			g.metrics.cacheMisses.Inc()
			body, err := f.readFull(g.cfg.MaxHTMLBytes)
			f.close()
			if err != nil {
				if r.Context().Err() != nil {
					return
				}
				failed = f.failure(reasonVerify, err)
				g.nodeFailure(r, failed)
				skip[f.node.id] = true
				continue
			}
			doc := &htmlDoc{etag: etagOf(f.entity), contentType: ctype, body: body, node: f.node.id, blocks: int(f.blocks.Load())}
			g.cache.put(key, doc)
			g.writeDoc(w, r, doc, doc.node, ttfb)
			return
		}
		if failed = g.stream(w, r, f, req, spec, nodes, skip, ctype, ttfb); failed != nil {
			// Its node failed before a byte was sent: the next one.
			if r.Context().Err() != nil {
				return
			}
			g.nodeFailure(r, failed)
			skip[f.node.id] = true
			continue
		}
		return
	}
}

// writeDoc serves a verified, buffered HTML document.
func (g *Gateway) writeDoc(w http.ResponseWriter, r *http.Request, doc *htmlDoc, node string, ttfb time.Duration) {
	h := w.Header()
	h.Set("Content-Type", doc.contentType)
	h.Set("ETag", doc.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server-Timing", serverTiming(node, doc.blocks, ttfb))
	if etagMatch(r.Header.Get("If-None-Match"), doc.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(doc.body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(doc.body)
	}
}

// stream serves the verified entity of f as it arrives. Its headers go
// out only once the first verified bytes are in hand: when f's node fails
// before that, stream sends nothing and returns the node's failure, for
// the caller to try the next node (or answer 502/504). When the node fails
// mid-body, it resumes from the next node at the first unsent byte; when
// no node can finish, it aborts the response so the client sees an error,
// never a truncated body.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, f *entityFetch, req verify.Request, spec webfile.Spec, nodes []nodeInfo, skip map[string]bool, ctype string, ttfb time.Duration) *NodeError {
	size := f.entity.Size
	etag := etagOf(f.entity)
	h := w.Header()
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		f.close()
		g.streamHeaders(h, f, ctype, etag, ttfb)
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	from, to := int64(0), size-1
	status := http.StatusOK
	if req.Range != nil {
		rg, err := spec.Resolve(size)
		var ue *webfile.UnsatisfiableError
		if errors.As(err, &ue) {
			f.close()
			h.Set("Accept-Ranges", "bytes")
			h.Set("Content-Range", ue.ContentRange())
			writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
			return nil
		}
		from, to = rg.Start, rg.End
		status = http.StatusPartialContent
		h.Set("Content-Range", rg.ContentRange(size))
	}
	total := to - from + 1
	if size == 0 {
		total = 0
	}
	buf := make([]byte, copyBufSize)
	var first int
	if r.Method != http.MethodHead && total > 0 {
		n, err := f.vr.Read(buf[:min(int64(len(buf)), total)])
		if n == 0 && err != nil {
			f.close()
			h.Del("Content-Range")
			return f.failure(reasonVerify, err)
		}
		first = n
	}
	g.streamHeaders(h, f, ctype, etag, ttfb)
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || total == 0 {
		f.close()
		return nil
	}
	if _, err := w.Write(buf[:first]); err != nil {
		f.close()
		return nil
	}
	sent := int64(first)
	for sent < total {
		want := buf
		if rem := total - sent; rem < int64(len(want)) {
			want = want[:rem]
		}
		n, rerr := f.vr.Read(want)
		if n > 0 {
			if _, werr := w.Write(want[:n]); werr != nil {
				f.close()
				return nil
			}
			sent += int64(n)
		}
		if rerr == nil || sent == total {
			continue
		}
		// The node failed (or ended early): resume elsewhere.
		f.close()
		if r.Context().Err() != nil {
			return nil
		}
		g.nodeFailure(r, f.failure(reasonVerify, rerr))
		skip[f.node.id] = true
		next := req
		next.Range = &verify.ByteRange{From: from + sent, To: to}
		var err error
		f, err = g.fetchEntity(r, nodes, next, skip, fetchMode{})
		if err != nil || etagOf(f.entity) != etag || f.entity.Size != size {
			if err == nil {
				f.close()
			}
			g.log.Warn("aborting response: no node could finish it", "host", r.Host, "path", r.URL.Path, "sent", sent, "of", total, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	f.close()
	return nil
}

// streamHeaders sets the headers of a streamed first-visit response.
func (g *Gateway) streamHeaders(h http.Header, f *entityFetch, ctype, etag string, ttfb time.Duration) {
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server-Timing", serverTiming(f.node.id, int(f.blocks.Load()), ttfb))
}

// serverTiming is the Server-Timing value of a first-visit response.
func serverTiming(node string, blocks int, ttfb time.Duration) string {
	return fmt.Sprintf(`verity;desc="first-visit",node;desc=%q,blocks;desc="%d",ttfb;dur=%.1f`,
		node, blocks, float64(ttfb.Microseconds())/1000)
}

// etagOf is the strong ETag of an entity: its CID, quoted.
func etagOf(e verify.Entity) string { return `"` + e.CID.String() + `"` }

// Limits on a request, checked before any node is asked: a client's bad
// request is the client's error, never a node's.
const (
	// MaxRequestURIBytes bounds a request target, path and query (414
	// beyond).
	MaxRequestURIBytes = 8 << 10
	// MaxPathSegments bounds the segments of a content path below the
	// root (400 beyond), as nodes and internal/verify do.
	MaxPathSegments = verify.MaxPathSegments
)

// splitPath applies webfile.SplitPath to an escaped URL path, as a 400,
// and MaxPathSegments.
func splitPath(escaped string) (segs []string, dir bool, err error) {
	segs, dir, err = webfile.SplitPath(escaped)
	if err != nil {
		return nil, false, badRequest("malformed path %q: empty, dot or bad escape in a segment", clip(escaped))
	}
	if len(segs) > MaxPathSegments {
		return nil, false, badRequest("path of %d segments; at most %d are served", len(segs), MaxPathSegments)
	}
	return segs, dir, nil
}
