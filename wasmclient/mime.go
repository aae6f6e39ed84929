package wasmclient

import "strings"

// DefaultContentType is used for names without a known extension.
const DefaultContentType = "application/octet-stream"

var contentTypes = map[string]string{
	"html":  "text/html; charset=utf-8",
	"htm":   "text/html; charset=utf-8",
	"css":   "text/css; charset=utf-8",
	"js":    "text/javascript; charset=utf-8",
	"mjs":   "text/javascript; charset=utf-8",
	"json":  "application/json",
	"svg":   "image/svg+xml",
	"png":   "image/png",
	"jpg":   "image/jpeg",
	"jpeg":  "image/jpeg",
	"gif":   "image/gif",
	"webp":  "image/webp",
	"avif":  "image/avif",
	"ico":   "image/x-icon",
	"woff":  "font/woff",
	"woff2": "font/woff2",
	"ttf":   "font/ttf",
	"txt":   "text/plain; charset=utf-8",
	"xml":   "application/xml",
	"wasm":  "application/wasm",
	"mp4":   "video/mp4",
	"webm":  "video/webm",
	"m3u8":  "application/vnd.apple.mpegurl",
	"ts":    "video/mp2t",
	"m4s":   "video/iso.segment",
	"pdf":   "application/pdf",
	"csv":   "text/csv; charset=utf-8",
	"map":   "application/json",
}

// ContentType returns the media type for a file name by its extension
// (case-insensitive), or DefaultContentType.
func ContentType(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return DefaultContentType
	}
	if t, ok := contentTypes[strings.ToLower(name[i+1:])]; ok {
		return t
	}
	return DefaultContentType
}
