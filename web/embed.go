// Package web holds the files Verity serves itself: the demo site that
// devnet publishes and the tests use.
package web

import (
	"embed"
	"io/fs"
)

//go:generate go run gen_demo.go

//go:embed all:demo
var demo embed.FS

// Demo is the demo site, rooted at its index.html.
var Demo fs.FS = mustSub(demo, "demo")

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path, which "demo" is not.
		return f
	}
	return sub
}
