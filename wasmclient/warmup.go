package wasmclient

import (
	"context"
	_ "embed"
	"io"
)

// The warm-up request. A worker's first request runs code the browser has
// not run yet in that instance (each wasm function is compiled on its first
// call, then again, optimised, once it ran enough; the JavaScript glue
// likewise): measured in the first request of a freshly started worker,
// the steps from the request to its first verified chunk took 20–30 ms
// more than in the second (docs/benchmarks.md, "The first verified byte
// of 1 MiB"). The worker therefore runs one request through the same code
// while it boots, meanwhile waiting on the network for its session and
// first node: warmupStream, a node's whole answer kept in the wasm, read
// through the same transport, verifier and response stream as a node's.
//
// warmupStream is the answer (VERITY/1 head, bao16 body) to GET
// /ipfs/<warmupRoot>/w of a directory holding w, warmupSize zero bytes
// cut in 32 KiB leaves (BLAKE3, raw leaves, as the importer does, in
// smaller leaves so that a few bytes cover several blocks and groups).
// TestWarmupFixture builds it and checks this copy against it.
//
//go:embed warmup.bin
var warmupStream []byte

const (
	warmupRoot = "bafyb4ia2a753aqshf5cp6wlmss3khnakcltsicveahub7dptui7cozwc3a"
	warmupPath = "/w"
	warmupSize = 80 << 10
)

// warmupSession is the warm-up client's session: one node, warmupRoot.
type warmupSession struct{}

func (warmupSession) LoadSession(context.Context) (*Session, error) {
	return (&Session{Version: 1, Root: warmupRoot, TTL: 3600, Nodes: []Node{{ID: "warmup", WebTransport: "https://warmup.invalid/"}}}).check()
}

// newWarmupClient returns a client whose one node answers over d, without
// payments, reports or saved scores: nothing of the warm-up reaches the
// worker's own client.
func newWarmupClient(d StreamDialer) (*Client, error) {
	return New(Config{
		Session:    warmupSession{},
		Transports: []Transport{&FramedTransport{Dialer: d}},
		NoPayments: true,
	})
}

// bytesStream is a Stream that reads its Reader and discards what is
// written (the warm-up tests' node).
type bytesStream struct{ io.Reader }

func (bytesStream) Write(p []byte) (int, error) { return len(p), nil }
func (bytesStream) Close() error                { return nil }
