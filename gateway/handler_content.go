package gateway

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// copyBufSize is the chunk size used to stream verified bytes.
const copyBufSize = 64 << 10

// serveContent serves a first visit: the file at the request path under the
// site's root, fetched from a node and verified before a byte is sent.
func (g *Gateway) serveContent(w *statusWriter, r *http.Request, site Site) {
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
		segs = append(segs, "index.html")
	}
	ctype := contentType(segs[len(segs)-1])
	isHTML := strings.HasPrefix(ctype, "text/html")
	rng := parseRange(r.Header.Get("Range"))
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
	nodes, err := g.liveNodes(r)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	req := verify.Request{Root: root, Path: segs, Range: rng}
	start := g.cfg.Now()
	skip := map[string]bool{}
	for {
		f, err := g.fetchEntity(r.Context(), nodes, req, skip)
		if err != nil {
			g.fail(w, r, err)
			return
		}
		ttfb := g.cfg.Now().Sub(start)
		switch f.entity.Kind {
		case verify.KindFile:
		case verify.KindDirectory:
			f.close()
			if dirPath {
				g.fail(w, r, fmt.Errorf("%w: %s is a directory", ErrNotFound, key.path))
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
				g.nodeFailure(f.failure(reasonVerify, err))
				skip[f.node.id] = true
				continue
			}
			doc := &htmlDoc{etag: `"` + f.entity.CID.String() + `"`, contentType: ctype, body: body, node: f.node.id, blocks: int(f.blocks.Load())}
			g.cache.put(key, doc)
			g.writeDoc(w, r, doc, doc.node, ttfb)
			return
		}
		g.stream(w, r, f, req, nodes, ctype, ttfb)
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

// stream serves the verified entity of f as it arrives. When its node fails
// mid-body, it resumes from the next node at the first unsent byte; when no
// node can finish, it aborts the response so the client sees an error, never
// a truncated body.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, f *entityFetch, req verify.Request, nodes []nodeInfo, ctype string, ttfb time.Duration) {
	size := f.entity.Size
	from, to := int64(0), size-1
	status := http.StatusOK
	h := w.Header()
	if req.Range != nil {
		from = req.Range.From
		if req.Range.To >= 0 && req.Range.To < to {
			to = req.Range.To
		}
		if from >= size {
			f.close()
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			writeError(w, r, http.StatusRequestedRangeNotSatisfiable, "range not satisfiable")
			return
		}
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, size))
	}
	etag := `"` + f.entity.CID.String() + `"`
	h.Set("Content-Type", ctype)
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Accept-Ranges", "bytes")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Server-Timing", serverTiming(f.node.id, int(f.blocks.Load()), ttfb))
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		f.close()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	total := to - from + 1
	if size == 0 {
		total = 0
	}
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || total == 0 {
		f.close()
		return
	}
	buf := make([]byte, copyBufSize)
	var sent int64
	skip := map[string]bool{}
	for sent < total {
		want := buf
		if rem := total - sent; rem < int64(len(want)) {
			want = want[:rem]
		}
		n, rerr := f.vr.Read(want)
		if n > 0 {
			if _, werr := w.Write(want[:n]); werr != nil {
				f.close()
				return
			}
			sent += int64(n)
		}
		if rerr == nil || sent == total {
			continue
		}
		// The node failed (or ended early): resume elsewhere.
		f.close()
		if r.Context().Err() != nil {
			return
		}
		g.nodeFailure(f.failure(reasonVerify, rerr))
		skip[f.node.id] = true
		next := req
		next.Range = &verify.ByteRange{From: from + sent, To: to}
		var err error
		f, err = g.fetchEntity(r.Context(), nodes, next, skip)
		if err != nil || f.entity.CID.String() != strings.Trim(etag, `"`) || f.entity.Size != size {
			if err == nil {
				f.close()
			}
			g.log.Warn("aborting response: no node could finish it", "host", r.Host, "path", r.URL.Path, "sent", sent, "of", total, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	f.close()
}

// serverTiming is the Server-Timing value of a first-visit response.
func serverTiming(node string, blocks int, ttfb time.Duration) string {
	return fmt.Sprintf(`verity;desc="first-visit",node;desc=%q,blocks;desc="%d",ttfb;dur=%.1f`,
		node, blocks, float64(ttfb.Microseconds())/1000)
}

// splitPath splits an escaped URL path into unescaped segments; dir reports
// a trailing slash (or the root). Empty, "." and ".." segments, and names
// containing "/" or NUL, are refused.
func splitPath(escaped string) (segs []string, dir bool, err error) {
	p := strings.TrimPrefix(escaped, "/")
	if p == "" {
		return nil, true, nil
	}
	dir = strings.HasSuffix(p, "/")
	p = strings.TrimSuffix(p, "/")
	for _, raw := range strings.Split(p, "/") {
		s, err := url.PathUnescape(raw)
		if err != nil {
			return nil, false, badRequest("malformed path segment %q", raw)
		}
		switch {
		case s == "":
			return nil, false, badRequest("empty path segment")
		case s == "." || s == "..":
			return nil, false, badRequest("path segment %q not allowed", s)
		case strings.ContainsAny(s, "/\x00"):
			return nil, false, badRequest("path segment %q contains '/' or NUL", s)
		}
		segs = append(segs, s)
	}
	return segs, dir, nil
}

// contentType is the Content-Type for a file name, by extension.
func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := knownTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// knownTypes fixes the types that matter to browsers, whatever the host's
// mime tables say.
var knownTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".wasm":  "application/wasm",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/x-icon",
	".txt":   "text/plain; charset=utf-8",
	".csv":   "text/csv; charset=utf-8",
	".xml":   "application/xml",
	".pdf":   "application/pdf",
	".mp4":   "video/mp4",
	".webm":  "video/webm",
	".mp3":   "audio/mpeg",
	".m3u8":  "application/vnd.apple.mpegurl",
	".ts":    "video/mp2t",
	".woff":  "font/woff",
	".woff2": "font/woff2",
}

// parseRange parses a single "bytes=a-b" or "bytes=a-" range; anything
// else (suffix ranges, several ranges, bad syntax) yields nil and the whole
// entity is served, as RFC 9110 allows.
func parseRange(v string) *verify.ByteRange {
	spec, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil
	}
	a, b, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok || a == "" {
		return nil
	}
	from, err := strconv.ParseInt(a, 10, 64)
	if err != nil || from < 0 {
		return nil
	}
	to := int64(-1)
	if b != "" {
		if to, err = strconv.ParseInt(b, 10, 64); err != nil || to < from {
			return nil
		}
	}
	return &verify.ByteRange{From: from, To: to}
}
