//go:build js && wasm

package blake3

import (
	"runtime"
	"syscall/js"
	"unsafe"
)

// In the worker, the service worker script instantiates the WebAssembly
// SIMD module of package internal/blake3/simd on the Go instance's own
// memory before Go starts, and sets globalThis.__verityBlake3Group to its
// group function: Go passes the address of a group's bytes, the module
// hashes its 16 chunks four at a time in v128 lanes and writes the
// chaining values of the group's two halves into simdOut. Without it
// (SIMD unsupported, no module served, Node without the test preload),
// everything is hashed in Go.
var (
	simdGroup   = js.Global().Get("__verityBlake3Group")
	simdEnabled = simdGroup.Type() == js.TypeFunction
	// simdOut is the module's output and scratch space: a package
	// variable (js/wasm runs one goroutine at a time, and the call does
	// not yield), never moved.
	simdOut [512]byte
	// simdGroups counts the groups hashed by the module.
	simdGroups uint64
)

// SIMDGroups returns how many 16 KiB groups the SIMD module has hashed;
// zero when it is not in use.
func SIMDGroups() uint64 { return simdGroups }

// groupSIMDAvailable reports whether groups of a subtree starting at chunk
// counter can be hashed by the module, whose counters are 32 bits.
func groupSIMDAvailable(counter uint64) bool {
	return simdEnabled && counter < 1<<31
}

// groupSIMD returns the chaining values of the two halves of the group g
// (groupLen bytes) whose first chunk is chunk number counter of the input.
// g must be on the heap: its address is passed as a number, which a stack
// copy during the call would leave pointing at the old stack. Every caller
// hashes a heap buffer (the bao decoder's, a block's); a caller hashing a
// local array of 16 KiB or more must not reach here.
func groupSIMD(g []byte, counter uint64) (left, right [8]uint32) {
	_ = g[groupLen-1]
	simdGroup.Invoke(int(uintptr(unsafe.Pointer(&g[0]))), int(uintptr(unsafe.Pointer(&simdOut[0]))), int(counter))
	runtime.KeepAlive(g)
	simdGroups++
	for i := range 8 {
		left[i] = le32(simdOut[4*i:])
		right[i] = le32(simdOut[32+4*i:])
	}
	return left, right
}
