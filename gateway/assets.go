package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
)

// Paths of the worker's files on every site origin.
const (
	LoaderPath   = "/verity.js"
	WorkerPath   = "/verity-sw.js"
	wasmPrefix   = "/.verity/wasm/"
	wasmExecBase = "/.verity/wasm_exec."
)

// Names inside Config.Assets.
const (
	assetLoader   = "verity.js"
	assetWorker   = "verity-sw.js"
	assetWasm     = "dist/verity.wasm"
	assetWasmExec = "dist/wasm_exec.js"
	assetB3SIMD   = "dist/blake3.wasm"
)

// Placeholders in verity-sw.js replaced with the content-hashed URLs, and
// with the BLAKE3 SIMD module's bytes in base64 (inlined: a few KB, no
// request of its own, cached with the script; empty when it was not
// built, and the worker then hashes in Go).
const (
	placeholderWasm     = "__VERITY_WASM_URL__"
	placeholderWasmExec = "__VERITY_WASM_EXEC_URL__"
	placeholderB3SIMD   = "__VERITY_BLAKE3_SIMD__"
)

const immutable = "public, max-age=31536000, immutable"

// staticFile is one prepared response body.
type staticFile struct {
	body        []byte
	gz          []byte // nil: not precompressed
	contentType string
	etag        string
	gzETag      string // ETag of gz
}

// assets are the worker's files, loaded and prepared once in New.
type assets struct {
	loader, worker *staticFile // nil when missing
	wasm, wasmExec *staticFile
	wasmPath       string // "/.verity/wasm/<hash16>.wasm"
	wasmExecPath   string // "/.verity/wasm_exec.<hash16>.js"
}

func hash16(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

func newStatic(body []byte, contentType string) *staticFile {
	return &staticFile{body: body, contentType: contentType, etag: `"` + hash16(body) + `"`}
}

// compress prepares the gzip variant, served with its own ETag: the two
// representations differ byte for byte, so they must not share a strong one.
func (f *staticFile) compress() error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(f.body); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	f.gz = buf.Bytes()
	f.gzETag = strings.TrimSuffix(f.etag, `"`) + `-gz"`
	return nil
}

func loadAssets(fsys fs.FS, log *slog.Logger) (*assets, error) {
	a := &assets{}
	read := func(name string) []byte {
		b, err := fs.ReadFile(fsys, name)
		if err == nil && len(b) == 0 {
			err = fs.ErrNotExist
		}
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				log.Warn("worker asset missing; it will be answered 404", "name", name)
			} else {
				log.Error("worker asset unreadable", "name", name, "err", err)
			}
			return nil
		}
		return b
	}
	if b := read(assetWasm); b != nil {
		a.wasm = newStatic(b, "application/wasm")
		if err := a.wasm.compress(); err != nil {
			return nil, err
		}
		a.wasmPath = wasmPrefix + hash16(b) + ".wasm"
	}
	if b := read(assetWasmExec); b != nil {
		a.wasmExec = newStatic(b, "text/javascript; charset=utf-8")
		if err := a.wasmExec.compress(); err != nil {
			return nil, err
		}
		a.wasmExecPath = wasmExecBase + hash16(b) + ".js"
	}
	if b := read(assetLoader); b != nil {
		a.loader = newStatic(b, "text/javascript; charset=utf-8")
	}
	if b := read(assetWorker); b != nil {
		var simd string
		if m, err := fs.ReadFile(fsys, assetB3SIMD); err == nil && len(m) > 0 {
			simd = base64.StdEncoding.EncodeToString(m)
		} else {
			log.Warn("BLAKE3 SIMD module missing; workers will hash in Go", "name", assetB3SIMD, "err", err)
		}
		s := strings.NewReplacer(placeholderWasm, a.wasmPath, placeholderWasmExec, a.wasmExecPath,
			placeholderB3SIMD, simd).Replace(string(b))
		a.worker = newStatic([]byte(s), "text/javascript; charset=utf-8")
	}
	return a, nil
}

// asset returns the prepared file for path, its cache policy and metric kind.
func (a *assets) lookup(path string) (f *staticFile, cacheControl, kind string, ok bool) {
	switch {
	case path == LoaderPath:
		return a.loader, "no-cache", kindScript, true
	case path == WorkerPath:
		return a.worker, "no-cache", kindScript, true
	case strings.HasPrefix(path, wasmPrefix):
		if a.wasm != nil && path == a.wasmPath {
			return a.wasm, immutable, kindWasm, true
		}
		return nil, "", kindWasm, true
	case strings.HasPrefix(path, wasmExecBase):
		if a.wasmExec != nil && path == a.wasmExecPath {
			return a.wasmExec, immutable, kindScript, true
		}
		return nil, "", kindScript, true
	}
	return nil, "", "", false
}

// serveStatic writes f; it reports the body bytes written.
func serveStatic(w http.ResponseWriter, r *http.Request, f *staticFile, cacheControl string) int64 {
	h := w.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	body, etag := f.body, f.etag
	if f.gz != nil {
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body, etag = f.gz, f.gzETag
		}
	}
	h.Set("ETag", etag)
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return 0
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return 0
	}
	n, _ := w.Write(body)
	return int64(n)
}

// acceptsGzip reports whether the request's Accept-Encoding allows gzip.
func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, part := range strings.Split(v, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.TrimSpace(strings.ToLower(name))
			if name != "gzip" && name != "*" {
				continue
			}
			if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
				if f, err := strconv.ParseFloat(q, 64); err == nil && f == 0 {
					return false
				}
			}
			return true
		}
	}
	return false
}

// etagMatch reports whether an If-None-Match value names etag.
func etagMatch(inm, etag string) bool {
	if inm == "" {
		return false
	}
	for _, part := range strings.Split(inm, ",") {
		p := strings.TrimPrefix(strings.TrimSpace(part), "W/")
		if p == "*" || p == etag {
			return true
		}
	}
	return false
}
