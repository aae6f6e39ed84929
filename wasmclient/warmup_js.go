//go:build js

package wasmclient

import (
	"context"
	"syscall/js"

	"github.com/verity-cdn/verity/internal/errfmt"
)

var (
	jsWritableStream = js.Global().Get("WritableStream")
	jsRequestCtor    = js.Global().Get("Request")
)

// jsWarmupDialer answers every dial with warmupStream as a WebTransport
// stream would: a byte stream to read (a Response's body, read with the
// same BYOB reader) and a stream to write the request head to.
type jsWarmupDialer struct{}

func (jsWarmupDialer) DialStream(context.Context, Node) (Stream, error) {
	readable, err := jsTry(func() js.Value { return jsResponseCtor.New(bytesToJS(warmupStream)).Get("body") })
	if err != nil {
		return nil, err
	}
	rd, err := newStreamReader(readable, nil)
	if err != nil {
		return nil, err
	}
	w, err := jsTry(func() js.Value { return jsWritableStream.New().Call("getWriter") })
	if err != nil {
		return nil, err
	}
	return &wtStream{writer: w, reader: rd}, nil
}

// WarmUp runs the warm-up request (warmup.go) through Handle, as a fetch
// event's request, and reads its Response's body to the end, so that the
// code of a request, from the Request to its verified body's last chunk,
// has run once before the worker's first request. Nothing of it reaches
// the worker's client, its stats or its nodes.
func (w *Worker) WarmUp(ctx context.Context) error {
	c, err := newWarmupClient(jsWarmupDialer{})
	if err != nil {
		return err
	}
	defer c.Close()
	ww := &Worker{c: c, log: w.log, streams: w.streams}
	req, err := jsTry(func() js.Value { return jsRequestCtor.New("https://warmup.invalid" + warmupPath) })
	if err != nil {
		return err
	}
	resp, err := await(ctx, ww.Handle(req))
	if err != nil {
		return err
	}
	if st := resp.Get("status").Int(); st != 200 {
		return errfmt.Errorf("wasmclient: warm-up answered %d", st)
	}
	buf, err := await(ctx, resp.Call("arrayBuffer"))
	if err != nil {
		return err
	}
	n := buf.Get("byteLength").Int()
	if n != warmupSize {
		return errfmt.Errorf("wasmclient: warm-up read %d bytes, want %d", n, warmupSize)
	}
	return nil
}
