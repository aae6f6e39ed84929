//go:build js && wasm

package blake3

import "syscall/js"

// setSIMD turns the SIMD module's use on or off (when it is installed) and
// returns the previous setting.
func setSIMD(on bool) bool {
	was := simdEnabled
	simdEnabled = on && simdGroup.Type() == js.TypeFunction
	return was
}
