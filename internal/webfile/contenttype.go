package webfile

import "strings"

// DefaultContentType is the type of names without a known extension.
const DefaultContentType = "application/octet-stream"

// contentTypes is the one table of media types, by lower-case extension. It
// does not consult the host's mime tables, so every gateway and every worker
// answer the same.
var contentTypes = map[string]string{
	// documents and code
	"html":        "text/html; charset=utf-8",
	"htm":         "text/html; charset=utf-8",
	"css":         "text/css; charset=utf-8",
	"js":          "text/javascript; charset=utf-8",
	"mjs":         "text/javascript; charset=utf-8",
	"cjs":         "text/javascript; charset=utf-8",
	"json":        "application/json",
	"map":         "application/json",
	"webmanifest": "application/manifest+json",
	"xml":         "application/xml",
	"txt":         "text/plain; charset=utf-8",
	"md":          "text/markdown; charset=utf-8",
	"csv":         "text/csv; charset=utf-8",
	"pdf":         "application/pdf",
	"wasm":        "application/wasm",
	// images
	"svg":  "image/svg+xml",
	"png":  "image/png",
	"jpg":  "image/jpeg",
	"jpeg": "image/jpeg",
	"gif":  "image/gif",
	"webp": "image/webp",
	"avif": "image/avif",
	"ico":  "image/x-icon",
	"bmp":  "image/bmp",
	// fonts
	"woff":  "font/woff",
	"woff2": "font/woff2",
	"ttf":   "font/ttf",
	"otf":   "font/otf",
	// media, progressive and segmented (HLS, DASH)
	"mp4":  "video/mp4",
	"m4v":  "video/mp4",
	"webm": "video/webm",
	"ogv":  "video/ogg",
	"mp3":  "audio/mpeg",
	"m4a":  "audio/mp4",
	"aac":  "audio/aac",
	"oga":  "audio/ogg",
	"ogg":  "audio/ogg",
	"opus": "audio/ogg",
	"wav":  "audio/wav",
	"flac": "audio/flac",
	"m3u8": "application/vnd.apple.mpegurl",
	"ts":   "video/mp2t",
	"m4s":  "video/iso.segment",
	"mpd":  "application/dash+xml",
	"vtt":  "text/vtt; charset=utf-8",
}

// ContentType returns the media type of a file name (or a path: only its
// last segment counts) by its extension, case-insensitively, or
// DefaultContentType.
func ContentType(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return DefaultContentType
	}
	ext := name[i+1:]
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t, ok := contentTypes[strings.ToLower(ext)]; ok {
		return t
	}
	return DefaultContentType
}
