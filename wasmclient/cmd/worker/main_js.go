//go:build js

// Command worker is the Go side of the Verity service worker, compiled to
// GOOS=js GOARCH=wasm. verity-sw.js instantiates it; it installs
// self.__verity = {handle, message} and calls self.__verityReady().
package main

import (
	"syscall/js"

	"github.com/verity-cdn/verity/wasmclient"
)

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
	self.Set("__verity", w.Export())
	if f := self.Get("__verityReady"); f.Type() == js.TypeFunction {
		f.Invoke()
	}
	select {}
}
