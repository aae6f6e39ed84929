// Command simdgen writes the BLAKE3 WebAssembly SIMD module (package simd)
// to the file -o names. `make wasm` runs it next to the worker's wasm.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/verity-cdn/verity/internal/blake3/simd"
)

func main() {
	out := flag.String("o", "blake3.wasm", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, simd.Module(), 0o644); err != nil {
		log.Fatal(err)
	}
}
