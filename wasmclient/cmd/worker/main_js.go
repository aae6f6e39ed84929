//go:build js

// Command worker is the Go side of the Verity service worker, compiled to
// GOOS=js GOARCH=wasm. verity-sw.js instantiates it; it installs
// self.__verity = {handle, message} and calls self.__verityReady(warm),
// warm saying whether its session and first node are ready.
package main

import (
	"context"
	"syscall/js"
	"time"

	"github.com/verity-cdn/verity/wasmclient"
)

// warmTimeout bounds the wait for the session and the first node's
// connection before the worker says it is ready.
const warmTimeout = 3 * time.Second

func main() {
	self := js.Global()
	w, err := wasmclient.NewWorker(wasmclient.WorkerConfig{})
	if err != nil {
		self.Get("console").Call("warn", "verity: worker failed to start: "+err.Error())
		if f := self.Get("__verityFailed"); f.Type() == js.TypeFunction {
			f.Invoke(err.Error())
		}
		return
	}
	// Ready once the session is loaded and the first node connected (or
	// that failed, or warmTimeout passed): until then the worker script
	// answers from the network, so no request waits for the handshakes.
	// Meanwhile the warm-up request runs the code of a request once, on
	// the thread that would otherwise wait for the network.
	ctx, cancel := wasmclient.WithTimeout(context.Background(), warmTimeout)
	warmedUp := make(chan error, 1)
	go func() { warmedUp <- w.WarmUp(ctx) }()
	warm := w.Client().Warm(ctx)
	if err := <-warmedUp; err != nil {
		self.Get("console").Call("warn", "verity: warm-up request failed: "+err.Error())
	}
	cancel()
	self.Set("__verity", w.Export())
	if f := self.Get("__verityReady"); f.Type() == js.TypeFunction {
		f.Invoke(warm == nil)
	}
	select {}
}
