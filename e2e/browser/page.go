package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/heapprofiler"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Eval evaluates the JavaScript expression in the tab, awaits it when it is
// a Promise, and decodes its JSON value into T.
func Eval[T any](ctx context.Context, b *Browser, expr string) (T, error) {
	tctx, cancel := b.tabCtx(ctx)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		var zero T
		var ex *chromedp.ExceptionError
		if errors.As(err, &ex) {
			return zero, &JSError{Expr: expr, Err: errors.New(exceptionText(ex.ExceptionDetails))}
		}
		return zero, &JSError{Expr: expr, Err: err}
	}
	return v, nil
}

// Call evaluates fn, a JavaScript function expression, applied to args
// (each encoded as JSON), like Eval.
func Call[T any](ctx context.Context, b *Browser, fn string, args ...any) (T, error) {
	enc := make([]string, len(args))
	for i, a := range args {
		j, err := json.Marshal(a)
		if err != nil {
			var zero T
			return zero, fmt.Errorf("browser: argument %d: %w", i, err)
		}
		enc[i] = string(j)
	}
	return Eval[T](ctx, b, "("+fn+")("+strings.Join(enc, ",")+")")
}

func exceptionText(d *runtime.ExceptionDetails) string {
	if d == nil {
		return "exception"
	}
	if d.Exception != nil && d.Exception.Description != "" {
		return d.Exception.Description
	}
	return d.Text
}

// tabCtx gives an action context bound to the tab and to ctx's deadline and
// cancellation.
func (b *Browser) tabCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	var tctx context.Context
	var cancel context.CancelFunc
	if dl, ok := ctx.Deadline(); ok {
		tctx, cancel = context.WithDeadline(b.ctx, dl)
	} else {
		tctx, cancel = context.WithCancel(b.ctx)
	}
	stop := context.AfterFunc(ctx, cancel)
	return tctx, func() { stop(); cancel() }
}

// Navigate loads url in the tab and waits for its load event.
func (b *Browser) Navigate(ctx context.Context, url string) error {
	ctx, cancel := b.bounded(ctx, b.cfg.WaitTimeout)
	defer cancel()
	tctx, tcancel := b.tabCtx(ctx)
	defer tcancel()
	if err := chromedp.Do(tctx, chromedp.Navigate(url)); err != nil {
		return fmt.Errorf("browser: navigate %s: %w", url, err)
	}
	return nil
}

// Reload reloads the tab and waits for its load event.
func (b *Browser) Reload(ctx context.Context) error {
	ctx, cancel := b.bounded(ctx, b.cfg.WaitTimeout)
	defer cancel()
	tctx, tcancel := b.tabCtx(ctx)
	defer tcancel()
	if err := chromedp.Do(tctx, chromedp.Reload()); err != nil {
		return fmt.Errorf("browser: reload: %w", err)
	}
	return nil
}

func (b *Browser) bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// waitJS evaluates cond (a JavaScript expression) every 25 ms inside the page
// until it is truthy, for at most d.
func (b *Browser) waitJS(ctx context.Context, what, cond string, d time.Duration) error {
	d = budget(ctx, d)
	ms := d.Milliseconds()
	ok, err := Eval[bool](ctx, b, fmt.Sprintf(`(async () => {
		const end = Date.now() + %d;
		for (;;) {
			try { if (%s) return true; } catch (e) {}
			if (Date.now() > end) return false;
			await new Promise(r => setTimeout(r, 25));
		}
	})()`, ms, cond))
	if err != nil {
		return fmt.Errorf("browser: waiting for %s: %w", what, err)
	}
	if !ok {
		return &TimeoutError{What: what, After: d.String()}
	}
	return nil
}

// budget shortens d to end shortly before ctx's deadline, leaving time to
// return an answer from the page.
func budget(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - 500*time.Millisecond; left < d {
			return max(left, 0)
		}
	}
	return d
}

// WaitFor waits until the JavaScript expression cond is truthy in the page,
// for at most the configured WaitTimeout or until shortly before ctx's
// deadline.
func (b *Browser) WaitFor(ctx context.Context, what, cond string) error {
	return b.waitJS(ctx, what, cond, b.cfg.WaitTimeout)
}

// WaitWorkerActive waits until the page's service worker registration has
// an active worker (navigator.serviceWorker.ready).
func (b *Browser) WaitWorkerActive(ctx context.Context) error {
	d := budget(ctx, b.cfg.WaitTimeout)
	ms := d.Milliseconds()
	ok, err := Eval[bool](ctx, b, fmt.Sprintf(`Promise.race([
		navigator.serviceWorker.ready.then(r => !!r.active),
		new Promise(r => setTimeout(() => r(false), %d)),
	])`, ms))
	if err != nil {
		return fmt.Errorf("browser: waiting for an active service worker: %w", err)
	}
	if !ok {
		return &TimeoutError{What: "an active service worker (navigator.serviceWorker.ready)", After: d.String()}
	}
	return nil
}

// Controlled reports whether a service worker controls the page.
func (b *Browser) Controlled(ctx context.Context) (bool, error) {
	return Eval[bool](ctx, b, `navigator.serviceWorker.controller !== null`)
}

// WaitController waits until a service worker controls the page: it waits
// for an active worker, reloads when the worker did not claim the page, and
// waits for navigator.serviceWorker.controller.
func (b *Browser) WaitController(ctx context.Context) error {
	if err := b.WaitWorkerActive(ctx); err != nil {
		return err
	}
	if ok, err := b.Controlled(ctx); err != nil {
		return err
	} else if ok {
		return nil
	}
	// Give clients.claim() a moment before reloading.
	if err := b.waitJS(ctx, "clients.claim()", `navigator.serviceWorker.controller !== null`, 500*time.Millisecond); err == nil {
		return nil
	}
	if err := b.Reload(ctx); err != nil {
		return err
	}
	return b.WaitFor(ctx, "navigator.serviceWorker.controller after reload", `navigator.serviceWorker.controller !== null`)
}

// ServerTiming is one metric of a Server-Timing header.
type ServerTiming struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Duration    float64 `json:"duration"`
}

// Resource is a PerformanceResourceTiming (or navigation) entry.
type Resource struct {
	Name            string         `json:"name"`
	EntryType       string         `json:"entryType"`
	InitiatorType   string         `json:"initiatorType"`
	TransferSize    float64        `json:"transferSize"`
	EncodedBodySize float64        `json:"encodedBodySize"`
	DecodedBodySize float64        `json:"decodedBodySize"`
	Duration        float64        `json:"duration"`
	ResponseStatus  int            `json:"responseStatus"`
	WorkerStart     float64        `json:"workerStart"`
	ServerTiming    []ServerTiming `json:"serverTiming"`
}

// Timing returns the description of the Server-Timing metric name.
func (r Resource) Timing(name string) (string, bool) {
	return timingDesc(r.ServerTiming, name)
}

func timingDesc(st []ServerTiming, name string) (string, bool) {
	for _, s := range st {
		if s.Name == name {
			return s.Description, true
		}
	}
	return "", false
}

// Resources returns the page's resource timing entries and, first, its
// navigation entry.
func (b *Browser) Resources(ctx context.Context) ([]Resource, error) {
	return Eval[[]Resource](ctx, b, `[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map(e => ({
		name: e.name, entryType: e.entryType, initiatorType: e.initiatorType,
		transferSize: e.transferSize, encodedBodySize: e.encodedBodySize, decodedBodySize: e.decodedBodySize,
		duration: e.duration, responseStatus: e.responseStatus || 0, workerStart: e.workerStart || 0,
		serverTiming: (e.serverTiming || []).map(s => ({name: s.name, description: s.description, duration: s.duration})),
	}))`)
}

// FetchOptions are the RequestInit fields Fetch passes to fetch.
type FetchOptions struct {
	Cache   string            `json:"cache,omitempty"` // e.g. "no-store"
	Headers map[string]string `json:"headers,omitempty"`
	// Body asks for the body's bytes too (base64 over the protocol; keep it
	// for small responses).
	Body bool `json:"-"`
}

// FetchResult is what a fetch inside the page returned.
type FetchResult struct {
	URL        string            `json:"url"`
	Status     int               `json:"status"`
	Redirected bool              `json:"redirected"`
	Headers    map[string]string `json:"headers"` // lower-case names
	Size       int64             `json:"size"`
	SHA256     string            `json:"sha256"` // hex, computed in the page
	BodyB64    string            `json:"body,omitempty"`
	Error      string            `json:"error,omitempty"` // body stream error
	Millis     float64           `json:"ms"`              // fetch start to body end
}

// Timing parses the response's Server-Timing header and returns the
// description of the metric name (for example "verity" → the transport).
func (r FetchResult) Timing(name string) (string, bool) {
	return timingDesc(ParseServerTiming(r.Headers["server-timing"]), name)
}

// Fetch fetches url inside the page (relative URLs resolve against the page)
// and returns the status, headers, size and SHA-256 of the body, computed in
// the page with crypto.subtle. A body stream that errors is reported in
// FetchResult.Error, not as err.
func (b *Browser) Fetch(ctx context.Context, url string, opts *FetchOptions) (FetchResult, error) {
	if opts == nil {
		opts = &FetchOptions{}
	}
	return Call[FetchResult](ctx, b, `async (url, init, wantBody) => {
		const t0 = performance.now();
		const r = await fetch(url, init);
		const headers = {};
		r.headers.forEach((v, k) => { headers[k] = v; });
		let buf = new ArrayBuffer(0), error = '';
		try { buf = await r.arrayBuffer(); } catch (e) { error = String(e); }
		const ms = performance.now() - t0;
		const d = new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
		const hex = Array.from(d, x => x.toString(16).padStart(2, '0')).join('');
		let body = '';
		if (wantBody) {
			const u = new Uint8Array(buf);
			let s = '';
			for (let i = 0; i < u.length; i += 0x8000) s += String.fromCharCode.apply(null, u.subarray(i, i + 0x8000));
			body = btoa(s);
		}
		return {url: r.url, status: r.status, redirected: r.redirected, headers, size: buf.byteLength, sha256: hex, body, error, ms};
	}`, url, opts, opts.Body)
}

// ParseServerTiming parses a Server-Timing header value
// (`name;desc="x";dur=1.5, other;desc=y`).
func ParseServerTiming(h string) []ServerTiming {
	var out []ServerTiming
	for _, part := range splitQuoted(h, ',') {
		params := splitQuoted(part, ';')
		if len(params) == 0 || strings.TrimSpace(params[0]) == "" {
			continue
		}
		st := ServerTiming{Name: strings.TrimSpace(params[0])}
		for _, p := range params[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "desc":
				st.Description = v
			case "dur":
				fmt.Sscanf(v, "%g", &st.Duration)
			}
		}
		out = append(out, st)
	}
	return out
}

// splitQuoted splits s at sep outside double quotes.
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// CollectGarbage runs a full garbage collection of the tab's JavaScript
// heap, where the objects of the documents it has left stay until one.
func (b *Browser) CollectGarbage(ctx context.Context) error {
	ctx, cancel := b.bounded(ctx, b.cfg.WaitTimeout)
	defer cancel()
	tctx, tcancel := b.tabCtx(ctx)
	defer tcancel()
	if _, err := chromedp.Call(tctx, heapprofiler.CollectGarbage, cdp.Empty{}); err != nil {
		return fmt.Errorf("browser: collect garbage: %w", err)
	}
	return nil
}
