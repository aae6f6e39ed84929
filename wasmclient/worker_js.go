//go:build js

package wasmclient

import (
	"context"
	"io"
	"strings"
	"syscall/js"

	"github.com/verity-cdn/verity/internal/blake3"
	"github.com/verity-cdn/verity/internal/errfmt"
	"github.com/verity-cdn/verity/internal/wire"
)

// WorkerConfig configures NewWorker. Zero values are defaults.
type WorkerConfig struct {
	// Client is the base client configuration; Session, Transports,
	// Fallback and Reporter default to the browser ones (session and
	// reports on this origin, WebTransport to nodes, fetch to the gateway).
	Client Config
	// ChunkSize is the largest chunk handed to a ReadableStream (default
	// 1 MiB; a stream's chunks are at most a block of the default chunker,
	// 256 KiB, until one read filled that: each chunk costs the worker's
	// thread an enqueue and a pull, each byte one copy into a new
	// buffer whatever the size).
	ChunkSize int
	// ReadAhead is how many verified bytes a response body may queue ahead
	// of the page (default: ChunkSize).
	ReadAhead int
}

// Worker is the Client as the service worker script sees it: Handle answers
// a fetch event's Request with a Promise<Response>, Message answers the
// page's postMessage queries.
type Worker struct {
	c       *Client
	log     Logger
	streams *bodyStreams
}

// NewWorker builds a Worker with the browser's transports.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if jsIOErr != nil {
		return nil, errfmt.Errorf("wasmclient: cannot make the stream helpers: %w", jsIOErr)
	}
	cc := cfg.Client
	if cc.Logger == nil {
		cc.Logger = consoleLogger{}
	}
	if cc.Session == nil {
		cc.Session = &FetchSessionLoader{}
	}
	if cc.Transports == nil {
		// Per node: WebTransport when the browser and the node have it,
		// else WebRTC through a bridging page (ErrNoAddress skips a
		// transport a node does not offer).
		cc.Transports = []Transport{
			&FramedTransport{TransportName: TransportWebTransport, Dialer: &WebTransportDialer{}},
			&FramedTransport{TransportName: TransportWebRTC, Dialer: &WebRTCDialer{}, Lanes: WebRTCLanes},
		}
	}
	if cc.Fallback == nil {
		cc.Fallback = &FetchTransport{}
	}
	if cc.Reporter == nil {
		cc.Reporter = &FetchReporter{}
	}
	if cc.ScoreStore == nil {
		cc.ScoreStore = &CacheScoreStore{}
	}
	if cc.ScoreReporter == nil {
		cc.ScoreReporter = &FetchScoreReporter{}
	}
	c, err := New(cc)
	if err != nil {
		return nil, err
	}
	chunk := cfg.ChunkSize
	if chunk <= 0 {
		chunk = 1 << 20
	}
	readAhead := cfg.ReadAhead
	if readAhead <= 0 {
		readAhead = chunk
	}
	return &Worker{c: c, log: cc.Logger, streams: newBodyStreams(chunk, readAhead, cc.Logger)}, nil
}

// Client returns the worker's client.
func (w *Worker) Client() *Client { return w.c }

// Close closes the client.
func (w *Worker) Close() error { return w.c.Close() }

// Handle serves a JS Request; it returns a Promise<Response> at once. It
// is not inlined: WarmUp calls it too, and one copy of its code in the
// wasm is enough.
//
//go:noinline
func (w *Worker) Handle(req js.Value) js.Value {
	return newPromise(func() (any, error) {
		fr, err := fetchRequestFromJS(req)
		if err != nil {
			return w.jsResponse(ErrorResponse(err)), nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		resp, err := w.c.Fetch(ctx, fr)
		if err != nil {
			cancel()
			w.log.Warn("request failed", "url", fr.URL, "err", err)
			return w.jsResponse(ErrorResponse(err)), nil
		}
		resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		if resp.Status == 200 && resp.ContentLength > 0 && resp.ContentLength <= wholeBodyMax {
			// A small body is read (verified) whole and handed over in one
			// piece: no stream, no pump, no pull per chunk. Its bytes came
			// with the head, or one round trip after.
			// The body is closed after the answer: closing a paid source
			// signs and sends its last receipt, which the page need not
			// wait for.
			buf := make([]byte, resp.ContentLength)
			_, err := io.ReadFull(resp.Body, buf)
			w.c.background(func(context.Context) { _ = resp.Body.Close() })
			if err != nil {
				w.log.Warn("request failed", "url", fr.URL, "err", err)
				return w.jsResponse(ErrorResponse(err)), nil
			}
			return w.jsResponseBytes(resp, buf), nil
		}
		return w.jsResponse(resp), nil
	})
}

// wholeBodyMax is the largest body Handle reads whole before answering.
const wholeBodyMax = 64 << 10

// Resolve answers a JS URL string with a Promise of {root, stale, cid,
// type} (see Client.Resolve), or of null when the path has no entry or the
// directory could not be fetched.
func (w *Worker) Resolve(href js.Value) js.Value {
	return newPromise(func() (any, error) {
		if href.Type() != js.TypeString {
			return nil, nil
		}
		u, err := jsTry(func() js.Value { return js.Global().Get("URL").New(href) })
		if err != nil {
			return nil, nil
		}
		res, err := w.c.Resolve(context.Background(), u.Get("pathname").String())
		if err != nil {
			w.log.Debug("resolve failed", "url", href.String(), "err", err)
			return nil, nil
		}
		return map[string]any{"root": res.Root, "stale": res.Stale, "cid": res.CID, "type": res.ContentType}, nil
	})
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

func fetchRequestFromJS(req js.Value) (FetchRequest, error) {
	href := req.Get("url").String()
	path, query, ok := splitHref(href)
	if !ok {
		u, err := jsTry(func() js.Value { return js.Global().Get("URL").New(href) })
		if err != nil {
			return FetchRequest{}, ErrBadPath
		}
		path, query = u.Get("pathname").String(), strings.TrimPrefix(u.Get("search").String(), "?")
	}
	h := req.Get("headers")
	fr := FetchRequest{
		URL:         href,
		Path:        path,
		Query:       query,
		IfNoneMatch: headerGet(h, "If-None-Match"),
		Range:       headerGet(h, "Range"),
		IfRange:     headerGet(h, "If-Range"),
	}
	return fr, nil
}

func headerGet(h js.Value, name string) string {
	v := h.Call("get", name)
	if v.Type() != js.TypeString {
		return ""
	}
	return v.String()
}

// jsResponse builds a JS Response whose body streams resp.Body.
func (w *Worker) jsResponse(resp *Response) js.Value { return w.jsResponseBytes(resp, nil) }

// jsResponseBytes builds a JS Response whose body is body when it is not
// nil, else streams resp.Body.
func (w *Worker) jsResponseBytes(resp *Response, whole []byte) js.Value {
	headers := jsHeaders.New()
	for _, kv := range resp.Header() {
		headers.Call("set", kv[0], kv[1])
	}
	init := map[string]any{
		"status":     resp.Status,
		"statusText": wire.StatusText(resp.Status),
		"headers":    headers,
	}
	body := js.Null()
	if whole != nil {
		// A stream of one chunk, not the buffer: in Chromium, answers
		// with buffer bodies cost more (verity-sw.js, once).
		b := bytesToJS(whole)
		r := jsResponseCtor.New(jsIO.Call("once", b), init)
		r.Set("verityBody", b) // the script may keep these: the stream's chunk is not handed to anyone else
		return r
	} else if resp.Status != 204 && resp.Status != 304 && resp.ContentLength != 0 {
		body = w.streams.New(resp.Body, resp.ContentLength)
	} else {
		_ = resp.Body.Close()
	}
	return jsResponseCtor.New(body, init)
}

// Message answers a query the page posted: {type:'verity-stats'} →
// {requests:[...]}, {type:'verity-reports'} → {reports:[...]}, on port.
func (w *Worker) Message(data, port js.Value) {
	if data.Type() != js.TypeObject || port.Type() != js.TypeObject {
		return
	}
	typ := data.Get("type")
	if typ.Type() != js.TypeString {
		return
	}
	var reply map[string]any
	switch typ.String() {
	case "verity-stats":
		recs := w.c.Stats().Requests()
		list := make([]any, len(recs))
		for i, r := range recs {
			list[i] = map[string]any{
				"url": r.URL, "transport": r.Transport, "node": r.Node, "blocks": r.Blocks,
				"bytes": r.Bytes, "ttfbMs": r.TTFBMs, "status": r.Status, "error": r.Error,
				"failovers": r.Failovers, "parallel": r.Parallel, "lanes": r.Lanes, "hedges": r.Hedges,
			}
		}
		reply = map[string]any{"type": "verity-stats", "requests": list}
	case "verity-scores":
		reply = map[string]any{"type": "verity-scores", "scores": string(MarshalScores(w.c.Scores().All())), "memory": wasmMemory(),
			"blake3SIMDGroups": float64(blake3.SIMDGroups())}
	case "verity-reports":
		reps := w.c.Stats().Reports()
		list := make([]any, len(reps))
		for i, r := range reps {
			list[i] = reportToJS(r)
		}
		reply = map[string]any{"type": "verity-reports", "reports": list}
	default:
		return
	}
	_, _ = jsTry(func() js.Value {
		port.Call("postMessage", reply)
		return js.Undefined()
	})
}

// Export returns the object the worker script uses as self.__verity:
// {handle(request) → Promise<Response>, resolve(url) → Promise<{root, stale,
// cid, type}|null>, message(data, port), root(root)} (root: Client.NoteRoot). A Response whose body was verified
// whole (at most wholeBodyMax bytes) carries those bytes as verityBody, a
// Uint8Array of its own, so the script caches them without reading the
// body again.
func (w *Worker) Export() js.Value {
	obj := jsObject.New()
	obj.Set("handle", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return w.Handle(arg(args, 0))
	}))
	obj.Set("resolve", js.FuncOf(func(_ js.Value, args []js.Value) any {
		return w.Resolve(arg(args, 0))
	}))
	obj.Set("message", js.FuncOf(func(_ js.Value, args []js.Value) any {
		w.Message(arg(args, 0), arg(args, 1))
		return nil
	}))
	obj.Set("root", js.FuncOf(func(_ js.Value, args []js.Value) any {
		if r := arg(args, 0); r.Type() == js.TypeString {
			w.c.NoteRoot(r.String())
		}
		return nil
	}))
	return obj
}

// consoleLogger writes warnings to the worker's console; debug is dropped.
type consoleLogger struct{}

func (consoleLogger) Debug(string, ...any) {}

func (consoleLogger) Warn(msg string, args ...any) {
	s := "verity: " + msg
	for i := 0; i+1 < len(args); i += 2 {
		s += errfmt.Sprintf(" %v=%v", args[i], args[i+1])
	}
	js.Global().Get("console").Call("warn", s)
}

func reportToJS(r Report) map[string]any {
	return map[string]any{"node": r.Node, "cid": r.CID, "reason": r.Reason, "detail": r.Detail}
}
