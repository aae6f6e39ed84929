package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// StreamResult is what StreamFetch measured of one response.
type StreamResult struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Size    int64             `json:"size"`
	Adler32 uint32            `json:"adler32"` // of the whole body, as hash/adler32
	Error   string            `json:"error"`   // the body stream's error, if any
	Millis  float64           `json:"ms"`      // request to last byte
}

// StreamFetch fetches url inside the page and reads the body as a stream,
// keeping nothing: it returns the size and the Adler-32 of the bytes
// (compare with hash/adler32), so bodies of several GiB can be checked
// without holding them in the page.
func (b *Browser) StreamFetch(ctx context.Context, url string, opts *FetchOptions) (StreamResult, error) {
	if opts == nil {
		opts = &FetchOptions{}
	}
	return Call[StreamResult](ctx, b, `async (url, init) => {
		const t0 = performance.now();
		const r = await fetch(url, init);
		const headers = {};
		r.headers.forEach((v, k) => { headers[k] = v; });
		let a = 1, bsum = 0, size = 0, error = '';
		try {
			const rd = r.body.getReader();
			for (;;) {
				const {value, done} = await rd.read();
				if (done) break;
				size += value.length;
				for (let i = 0; i < value.length; ) {
					const end = Math.min(value.length, i + 3800); // no overflow before the modulo
					for (; i < end; i++) { a += value[i]; bsum += a; }
					a %= 65521; bsum %= 65521;
				}
			}
		} catch (e) { error = String(e); }
		return {status: r.status, headers, size, adler32: ((bsum << 16) | a) >>> 0, error, ms: performance.now() - t0};
	}`, url, opts)
}

// WorkerMemory is the worker's memory as it reports it with its scores.
type WorkerMemory struct {
	WasmBytes   int64 `json:"wasmBytes"`   // Go wasm linear memory (only grows: the peak)
	JSHeapBytes int64 `json:"jsHeapBytes"` // the worker's JS heap in use, 0 when not exposed
}

// WorkerScores is the worker's verity-scores reply.
type WorkerScores struct {
	Scores string       `json:"scores"` // the scores document (docs/protocol.md §6.8)
	Memory WorkerMemory `json:"memory"`
	// Blake3SIMDGroups counts the 16 KiB groups the worker hashed with
	// its WebAssembly SIMD module (0: it hashes in Go).
	Blake3SIMDGroups int64 `json:"blake3SIMDGroups"`
}

// WorkerScores asks the worker for its node scores and memory.
func (b *Browser) WorkerScores(ctx context.Context) (WorkerScores, error) {
	raw, err := b.Message(ctx, "verity-scores")
	if err != nil {
		return WorkerScores{}, err
	}
	var s WorkerScores
	if err := json.Unmarshal(raw, &s); err != nil {
		return WorkerScores{}, fmt.Errorf("browser: verity-scores reply %s: %w", clip(raw), err)
	}
	return s, nil
}

// WorkerJSHeap returns the JS heap in use by the running service worker of
// the tab's origin, from its DevTools target (Runtime.getHeapUsage): the
// worker's JS side (wasm glue, streams, queued chunks), which the wasm
// linear memory does not include. It fails when no worker is running.
func (b *Browser) WorkerJSHeap(ctx context.Context) (int64, error) {
	tctx, cancel := b.tabCtx(ctx)
	defer cancel()
	infos, err := chromedp.Targets(tctx)
	if err != nil {
		return 0, fmt.Errorf("browser: targets: %w", err)
	}
	var id target.ID
	for _, in := range infos {
		if in.Type == "service_worker" {
			id = in.TargetID
		}
	}
	if id == "" {
		return 0, errors.New("browser: no service worker target")
	}
	wctx, wcancel := chromedp.NewContext(tctx, chromedp.WithTargetID(id), chromedp.WithDetachOnCancel())
	defer wcancel()
	var used float64
	err = chromedp.Do(wctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		r, err := chromedp.Call(ctx, runtime.GetHeapUsage, cdp.Empty{})
		if err != nil {
			return err
		}
		used = r.UsedSize
		return nil
	}))
	if err != nil {
		return 0, fmt.Errorf("browser: worker heap usage: %w", err)
	}
	return int64(used), nil
}
