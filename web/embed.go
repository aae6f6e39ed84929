// Package web holds the files Verity serves itself: the demo site that
// devnet publishes and the tests use, and the web console the gateway
// serves on its own host.
package web

import (
	"embed"
	"io/fs"
)

//go:generate go run gen_demo.go

//go:embed all:demo
var demo embed.FS

//go:embed console
var console embed.FS

// Console is the web console (gateway.Config.Console), rooted at its
// index.html: plain HTML, CSS and JavaScript over the gateway's public
// API. Its chart library, uPlot, is copied into console/vendor/ by
// `make console-assets` from web/chart's pinned npm package; without it
// the console shows totals instead of charts.
var Console fs.FS = mustSub(console, "console")

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
