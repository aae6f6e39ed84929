package wasmclient

import (
	"io"
	"strconv"
	"strings"

	"github.com/verity-cdn/verity/internal/wire"
)

// FetchRequest is one GET the worker serves.
type FetchRequest struct {
	// URL is recorded in the stats (default: Path).
	URL string
	// Path is the URL path, percent-encoded as in URL.pathname.
	Path string
	// Query is the raw query without "?", kept on redirects.
	Query string
	// Range is the request's Range header; see webfile.ParseSpec for what
	// is honoured and what is ignored.
	Range string
	// IfRange is the request's If-Range header: the range is honoured only
	// when it is empty or the entity's ETag.
	IfRange string
	// IfNoneMatch is the request's If-None-Match header.
	IfNoneMatch string
}

// Response is the worker's answer. Body is never nil; it yields verified
// bytes only and fails over between sources internally. Close it.
type Response struct {
	Status        int
	ContentType   string
	ContentLength int64 // -1 when not sent
	ETag          string
	ContentRange  string
	Location      string
	ServerTiming  string
	Transport     string // transport of the source that sent the headers
	Node          string // node id of that source, or "gateway"
	Root          string // the site root the path was resolved in (X-Verity-Root)
	// Stale says the session naming Root was held past its ttl or kept
	// after a failed load: a deploy may have replaced Root
	// (X-Verity-Stale: 1).
	Stale bool
	Body  io.ReadCloser
}

// Header returns the response's header fields in a stable order.
func (r *Response) Header() [][2]string {
	var h [][2]string
	add := func(k, v string) {
		if v != "" {
			h = append(h, [2]string{k, v})
		}
	}
	add("Content-Type", r.ContentType)
	if r.ContentLength >= 0 {
		add("Content-Length", strconv.FormatInt(r.ContentLength, 10))
	}
	add("ETag", r.ETag)
	if r.ETag != "" {
		add("Accept-Ranges", "bytes")
	}
	add("Content-Range", r.ContentRange)
	add("Location", r.Location)
	add("Server-Timing", r.ServerTiming)
	add("X-Verity-Root", r.Root)
	if r.Stale {
		add("X-Verity-Stale", "1")
	}
	return h
}

// ErrorResponse is the text response for an error from Fetch.
func ErrorResponse(err error) *Response {
	status := HTTPStatus(err)
	msg := strconv.Itoa(status) + " " + wire.StatusText(status) + "\n"
	if err != nil {
		msg += err.Error() + "\n"
	}
	return &Response{
		Status:        status,
		ContentType:   "text/plain; charset=utf-8",
		ContentLength: int64(len(msg)),
		Body:          io.NopCloser(strings.NewReader(msg)),
	}
}

func serverTiming(transport, node string, blocks, ttfbMs int64) string {
	return `verity;desc="` + transport + `",node;desc="` + node + `",blocks;desc="` +
		strconv.FormatInt(blocks, 10) + `",ttfb;dur=` + strconv.FormatInt(ttfbMs, 10)
}

// etagMatches reports whether an If-None-Match value matches etag.
func etagMatches(ifNoneMatch, etag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimSpace(t)
		t = strings.TrimPrefix(t, "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}
