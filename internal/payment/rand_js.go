//go:build js

package payment

import (
	"errors"
	"syscall/js"
)

var errNoRandom = errors.New("payment: crypto.getRandomValues unavailable")

// jsRandom reads the JS crypto.getRandomValues, the source crypto/rand
// uses in js/wasm too, without linking crypto/rand.
type jsRandom struct{}

// getRandomValues fills at most 65536 bytes per call.
const maxRandomChunk = 65536

func (jsRandom) Read(p []byte) (int, error) {
	crypto := js.Global().Get("crypto")
	if crypto.Type() != js.TypeObject || crypto.Get("getRandomValues").Type() != js.TypeFunction {
		return 0, errNoRandom
	}
	a := js.Global().Get("Uint8Array").New(min(len(p), maxRandomChunk))
	for n := 0; n < len(p); {
		m := min(len(p)-n, maxRandomChunk)
		chunk := a
		if m < a.Length() {
			chunk = a.Call("subarray", 0, m)
		}
		crypto.Call("getRandomValues", chunk)
		js.CopyBytesToGo(p[n:n+m], chunk)
		n += m
	}
	return len(p), nil
}
