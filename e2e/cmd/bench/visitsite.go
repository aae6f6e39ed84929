package main

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// The visit rows' site: a page as a site owner deploys it, generated
// deterministically under visitDir of the bench site (and served as is by
// the plain file server). visitSmall is the ~2 KiB asset of the
// per-request rows; the page does not reference it.
const (
	visitDir   = "visit"
	visitSmall = "small.txt"
)

// visitSite describes the generated page.
type visitSite struct {
	Resources int   // subresources the HTML references (the loader included)
	Bytes     int64 // HTML and subresources
}

// makeVisitSite writes the page into dir: index.html referencing 4
// stylesheets, 10 scripts, 4 fonts (preloaded, WOFF2 headers on random
// bytes), 17 images (PNG and JPEG of noise, SVG) and the Verity loader,
// about 2 MB in all, and the small asset of the per-request rows.
func makeVisitSite(dir string) (visitSite, error) {
	rng := rand.New(rand.NewChaCha8([32]byte{'v', 'i', 's', 'i', 't'}))
	var site visitSite
	write := func(name string, b []byte) error {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		site.Bytes += int64(len(b))
		return os.WriteFile(p, b, 0o644)
	}
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyz"
		n := 3 + rng.IntN(8)
		b := make([]byte, n)
		for i := range b {
			b[i] = letters[rng.IntN(len(letters))]
		}
		return string(b)
	}
	text := func(size int, line func() string) []byte {
		var b bytes.Buffer
		for b.Len() < size {
			b.WriteString(line())
		}
		return b.Bytes()
	}
	cssLine := func() string {
		return fmt.Sprintf(".%s-%s{margin:%dpx %dpx;color:#%06x;font:%dpx/%.1f %s,sans-serif}\n",
			word(), word(), rng.IntN(40), rng.IntN(40), rng.IntN(1<<24), 10+rng.IntN(20), 1+rng.Float64(), word())
	}
	jsLine := func() string {
		return fmt.Sprintf("function %s_%s(%s,%s){const %s=%s+%d;return %s.%s(%s)*%d}\n",
			word(), word(), word(), word(), word(), word(), rng.IntN(1000), word(), word(), word(), rng.IntN(100))
	}
	noise := func(w, h int) *image.NRGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			img.Pix[i] = byte(rng.Uint32())
		}
		return img
	}

	var head, body strings.Builder
	head.WriteString("<link rel=\"icon\" href=\"data:,\">\n<script src=\"/verity.js\" async></script>\n")
	site.Resources++ // the loader
	for i, kb := range []int{14, 28, 46, 64} {
		name := fmt.Sprintf("assets/css/style-%d.css", i)
		if err := write(visitDir+"/"+name, text(kb<<10, cssLine)); err != nil {
			return site, err
		}
		fmt.Fprintf(&head, "<link rel=\"stylesheet\" href=\"%s\">\n", name)
		site.Resources++
	}
	for i, kb := range []int{22, 36, 48} {
		name := fmt.Sprintf("assets/fonts/font-%d.woff2", i)
		f := append([]byte("wOF2\x00\x01\x00\x00"), make([]byte, kb<<10)...)
		for j := 8; j < len(f); j++ {
			f[j] = byte(rng.Uint32())
		}
		if err := write(visitDir+"/"+name, f); err != nil {
			return site, err
		}
		fmt.Fprintf(&head, "<link rel=\"preload\" href=\"%s\" as=\"font\" type=\"font/woff2\" crossorigin>\n", name)
		site.Resources++
	}
	for i, kb := range []int{8, 12, 18, 26, 34, 44, 60, 80, 110, 150} {
		name := fmt.Sprintf("assets/js/module-%d.js", i)
		if err := write(visitDir+"/"+name, text(kb<<10, jsLine)); err != nil {
			return site, err
		}
		fmt.Fprintf(&head, "<script src=\"%s\" defer></script>\n", name)
		site.Resources++
	}
	body.WriteString("<header><h1>Generated site</h1></header>\n<main>\n")
	for i := range 18 {
		var b bytes.Buffer
		var name string
		var w, h int
		switch {
		case i%3 == 0: // PNG of noise: incompressible, w*h*4 bytes
			w, h = 96+24*(i%5), 96+16*(i%4)
			if err := png.Encode(&b, noise(w, h)); err != nil {
				return site, err
			}
			name = fmt.Sprintf("assets/img/tile-%d.png", i)
		case i%3 == 1: // JPEG of noise
			w, h = 160+32*(i%4), 120+24*(i%3)
			if err := jpeg.Encode(&b, noise(w, h), &jpeg.Options{Quality: 85}); err != nil {
				return site, err
			}
			name = fmt.Sprintf("assets/img/photo-%d.jpg", i)
		default: // SVG icon
			w, h = 48, 48
			fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 48 48\">")
			for range 40 {
				fmt.Fprintf(&b, "<circle cx=\"%d\" cy=\"%d\" r=\"%d\" fill=\"#%06x\"/>", rng.IntN(48), rng.IntN(48), 1+rng.IntN(6), rng.IntN(1<<24))
			}
			b.WriteString("</svg>\n")
			name = fmt.Sprintf("assets/img/icon-%d.svg", i)
		}
		if err := write(visitDir+"/"+name, b.Bytes()); err != nil {
			return site, err
		}
		fmt.Fprintf(&body, "<figure><img src=\"%s\" width=\"%d\" height=\"%d\" alt=\"\"><figcaption>%s %s %s</figcaption></figure>\n", name, w, h, word(), word(), word())
		site.Resources++
	}
	for range 60 {
		fmt.Fprintf(&body, "<p>%s %s %s %s %s %s %s %s.</p>\n", word(), word(), word(), word(), word(), word(), word(), word())
	}
	body.WriteString("</main>\n")
	html := "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>A generated site</title>\n" +
		head.String() + "</head>\n<body>\n" + body.String() + "</body>\n</html>\n"
	if err := write(visitDir+"/index.html", []byte(html)); err != nil {
		return site, err
	}
	small := text(2<<10, func() string { return word() + " " })
	if err := os.WriteFile(filepath.Join(dir, visitDir, visitSmall), small[:2<<10], 0o644); err != nil {
		return site, err
	}
	return site, nil
}

// visitOwnSmall is the ~2 KiB asset the per-request rows fetch from a site
// of -visit-site, written at its root.
const visitOwnSmall = "verity-bench-small.txt"

// loaderTag is the tag a site owner adds to a page.
const loaderTag = `<script src="/verity.js" async></script>`

// copyVisitSite copies the static site under src into dir for the visit
// rows, as its owner would deploy it with the loader added: its
// index.html gets loaderTag (before </head>) when it loads no
// /verity.js, and the per-request rows' small asset is written at the
// root. Resources and Bytes are left 0, for the caller to count on a
// visit (the site's files may hold much its page does not load).
func copyVisitSite(src, dir string) (visitSite, error) {
	var site visitSite
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		return site, err
	}
	index := filepath.Join(dir, "index.html")
	html, err := os.ReadFile(index)
	if err != nil {
		return site, fmt.Errorf("the site has no index.html: %w", err)
	}
	if !bytes.Contains(html, []byte("/verity.js")) {
		if err := os.WriteFile(index, withLoader(html), 0o644); err != nil {
			return site, err
		}
	}
	small := bytes.Repeat([]byte("verity "), 2<<10/7+1)[:2<<10]
	return site, os.WriteFile(filepath.Join(dir, visitOwnSmall), small, 0o644)
}

// withLoader returns html with loaderTag before its </head>, else before
// its <body, else first.
func withLoader(html []byte) []byte {
	lower := bytes.ToLower(html)
	at := bytes.Index(lower, []byte("</head>"))
	if at < 0 {
		at = bytes.Index(lower, []byte("<body"))
	}
	if at < 0 {
		at = 0
	}
	out := make([]byte, 0, len(html)+len(loaderTag)+1)
	out = append(out, html[:at]...)
	out = append(out, loaderTag+"\n"...)
	return append(out, html[at:]...)
}
