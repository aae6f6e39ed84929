//go:build js

package wasmclient

import (
	"context"
	"io"
	"strings"
	"syscall/js"

	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/wire"
)

// jsFetch calls fetch(url, init) with an AbortController tied to ctx until
// the returned release func is called.
func jsFetch(ctx context.Context, url string, init map[string]any) (js.Value, func(), error) {
	ac := js.Global().Get("AbortController").New()
	if init == nil {
		init = map[string]any{}
	}
	init["signal"] = ac.Get("signal")
	stop := context.AfterFunc(ctx, func() { ac.Call("abort") })
	release := func() { stop() }
	p, err := jsTry(func() js.Value { return js.Global().Call("fetch", url, init) })
	if err != nil {
		release()
		return js.Undefined(), nil, err
	}
	resp, err := await(ctx, p)
	if err != nil {
		release()
		ignoreRejection(p)
		if ctx.Err() != nil {
			return js.Undefined(), nil, context.Cause(ctx)
		}
		return js.Undefined(), nil, err
	}
	abort := func() { stop(); ac.Call("abort") }
	return resp, abort, nil
}

func responseText(ctx context.Context, resp js.Value, limit int) string {
	v, err := await(ctx, resp.Call("text"))
	if err != nil || v.Type() != js.TypeString {
		return ""
	}
	s := v.String()
	if len(s) > limit {
		s = s[:limit]
	}
	return strings.TrimSpace(s)
}

// FetchTransport fetches CARs with the browser's fetch from Node.HTTP +
// target. The worker uses it for the gateway fallback, whose "node" address
// is the origin-relative fallback base ("/.verity/v1").
type FetchTransport struct {
	// TransportName is what Name returns (default "gateway").
	TransportName string
}

var _ Transport = (*FetchTransport)(nil)

// Name implements Transport.
func (t *FetchTransport) Name() string {
	if t.TransportName == "" {
		return TransportGateway
	}
	return t.TransportName
}

// Open implements Transport.
func (t *FetchTransport) Open(ctx context.Context, node Node, target string) (io.ReadCloser, error) {
	if node.HTTP == "" {
		return nil, ErrNoAddress
	}
	url := strings.TrimSuffix(node.HTTP, "/") + target
	resp, abort, err := jsFetch(ctx, url, map[string]any{
		"headers": map[string]any{"Accept": CARAccept},
		"cache":   "no-store",
	})
	if err != nil {
		return nil, err
	}
	if !resp.Get("ok").Bool() {
		msg := responseText(ctx, resp, 4<<10)
		abort()
		return nil, &wire.StatusError{Status: resp.Get("status").Int(), Message: msg}
	}
	body := resp.Get("body")
	if body.IsNull() || body.IsUndefined() {
		abort()
		return nil, errNoBody
	}
	rd, err := newStreamReader(body, abort)
	if err != nil {
		abort()
		return nil, err
	}
	return rd, nil
}

// FetchSessionLoader loads the session document with fetch.
type FetchSessionLoader struct {
	// URL of the session document (default SessionPath, origin-relative).
	URL string
}

var _ SessionLoader = (*FetchSessionLoader)(nil)

var _ KeyedSessionLoader = (*FetchSessionLoader)(nil)

// LoadSession implements SessionLoader.
func (l *FetchSessionLoader) LoadSession(ctx context.Context) (*Session, error) {
	return l.LoadSessionKey(ctx, "")
}

// LoadSessionKey implements KeyedSessionLoader.
func (l *FetchSessionLoader) LoadSessionKey(ctx context.Context, key string) (*Session, error) {
	url := l.URL
	if url == "" {
		url = SessionPath
	}
	if key != "" {
		url += "?key=" + key // base32 lower case: nothing to escape
	}
	resp, abort, err := jsFetch(ctx, url, map[string]any{"cache": "no-store", "credentials": "same-origin"})
	if err != nil {
		return nil, err
	}
	defer abort()
	if st := resp.Get("status").Int(); st != 200 {
		return nil, errfmt.Errorf("%w: status %d", ErrSession, st)
	}
	text, err := await(ctx, resp.Call("text"))
	if err != nil {
		return nil, err
	}
	return ParseSession([]byte(text.String()))
}

// FetchReporter posts reports with fetch.
type FetchReporter struct {
	// URL to post to (default ReportPath, origin-relative).
	URL string
}

var _ Reporter = (*FetchReporter)(nil)

// Report implements Reporter.
func (r *FetchReporter) Report(ctx context.Context, rep Report) error {
	url := r.URL
	if url == "" {
		url = ReportPath
	}
	return jsPost(ctx, url, "application/json", jsJSON.Call("stringify", js.ValueOf(reportToJS(rep))))
}

// jsPost posts body (a JS value or a string) to url with fetch and wants
// a 2xx answer.
func jsPost(ctx context.Context, url, contentType string, body any) error {
	resp, abort, err := jsFetch(ctx, url, map[string]any{
		"method":  "POST",
		"headers": map[string]any{"Content-Type": contentType},
		"body":    body,
	})
	if err != nil {
		return err
	}
	defer abort()
	if !resp.Get("ok").Bool() {
		return &wire.StatusError{Status: resp.Get("status").Int()}
	}
	return nil
}
