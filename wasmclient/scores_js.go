//go:build js

package wasmclient

import (
	"context"
	"syscall/js"
)

// CacheScoreStore keeps the scores document in the worker's Cache Storage
// (which survives worker restarts, like IndexedDB, and is reachable from
// Go with a few promise calls).
type CacheScoreStore struct {
	// Cache is the cache name (default "verity-scores-v1").
	Cache string
	// Key is the request URL the document is stored under (default
	// "/.verity/scores").
	Key string
}

var _ ScoreStore = (*CacheScoreStore)(nil)

func (s *CacheScoreStore) names() (string, string) {
	c, k := s.Cache, s.Key
	if c == "" {
		c = "verity-scores-v1"
	}
	if k == "" {
		k = "/.verity/scores"
	}
	return c, k
}

func (s *CacheScoreStore) open(ctx context.Context) (js.Value, error) {
	name, _ := s.names()
	caches := js.Global().Get("caches")
	if caches.IsUndefined() || caches.IsNull() {
		return js.Undefined(), ErrUnsupported
	}
	p, err := jsTry(func() js.Value { return caches.Call("open", name) })
	if err != nil {
		return js.Undefined(), err
	}
	return await(ctx, p)
}

// LoadScores implements ScoreStore.
func (s *CacheScoreStore) LoadScores(ctx context.Context) ([]byte, error) {
	cache, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	_, key := s.names()
	resp, err := await(ctx, cache.Call("match", key))
	if err != nil || resp.IsUndefined() || resp.IsNull() {
		return nil, err
	}
	text, err := await(ctx, resp.Call("text"))
	if err != nil {
		return nil, err
	}
	return []byte(text.String()), nil
}

// SaveScores implements ScoreStore.
func (s *CacheScoreStore) SaveScores(ctx context.Context, doc []byte) error {
	cache, err := s.open(ctx)
	if err != nil {
		return err
	}
	_, key := s.names()
	resp := js.Global().Get("Response").New(string(doc), map[string]any{
		"headers": map[string]any{"Content-Type": "text/plain"},
	})
	_, err = await(ctx, cache.Call("put", key, resp))
	return err
}

// FetchScoreReporter posts the scores document with fetch.
type FetchScoreReporter struct {
	// URL to post to (default ScoresPath, origin-relative).
	URL string
}

var _ ScoreReporter = (*FetchScoreReporter)(nil)

// ReportScores implements ScoreReporter.
func (r *FetchScoreReporter) ReportScores(ctx context.Context, doc []byte) error {
	url := r.URL
	if url == "" {
		url = ScoresPath
	}
	return jsPost(ctx, url, "text/plain", string(doc))
}

// wasmMemory reports the worker's memory: the Go wasm linear memory size
// (it only grows, so it is the peak) and, where the browser exposes it,
// the JS heap in use.
func wasmMemory() map[string]any {
	out := map[string]any{}
	if mem := js.Global().Get("__verityMemory"); mem.Type() == js.TypeObject {
		out["wasmBytes"] = mem.Get("buffer").Get("byteLength").Int()
	}
	if perf := js.Global().Get("performance"); perf.Type() == js.TypeObject {
		if pm := perf.Get("memory"); pm.Type() == js.TypeObject {
			out["jsHeapBytes"] = pm.Get("usedJSHeapSize").Int()
		}
	}
	return out
}
