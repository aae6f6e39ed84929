//go:build !js

// Command worker is the Go side of the Verity service worker. It only does
// something when compiled with GOOS=js GOARCH=wasm; see main_js.go.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "worker: build with GOOS=js GOARCH=wasm (make wasm)")
	os.Exit(2)
}
