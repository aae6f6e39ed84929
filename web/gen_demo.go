//go:build ignore

// gen_demo writes the demo site's generated files: two PNG tiles and a
// CSV data set over 1 MiB. The output is deterministic; run it with
// `go generate ./web` after changing it.
package main

import (
	"bufio"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := "demo"
	must(writePNG(filepath.Join(dir, "images", "mandelbrot.png"), mandelbrot(320, 200)))
	must(writePNG(filepath.Join(dir, "images", "waves.png"), waves(256, 256)))
	must(writeCSV(filepath.Join(dir, "media", "measurements.csv"), 1536<<10))
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

func writePNG(name string, img image.Image) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func mandelbrot(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			x0 := float64(px)/float64(w)*3.0 - 2.2
			y0 := float64(py)/float64(h)*2.0 - 1.0
			x, y, i := 0.0, 0.0, 0
			for ; i < 96 && x*x+y*y < 4; i++ {
				x, y = x*x-y*y+x0, 2*x*y+y0
			}
			t := float64(i) / 96
			img.Set(px, py, color.RGBA{
				R: uint8(9 * (1 - t) * t * t * t * 255),
				G: uint8(15 * (1 - t) * (1 - t) * t * t * 255),
				B: uint8(8.5 * (1 - t) * (1 - t) * (1 - t) * t * 255),
				A: 255,
			})
		}
	}
	return img
}

func waves(w, h int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for py := 0; py < h; py++ {
		for px := 0; px < w; px++ {
			fx, fy := float64(px)/float64(w), float64(py)/float64(h)
			v := math.Sin(fx*12+math.Sin(fy*7)*2) * math.Cos(fy*9-fx*3)
			c := uint8(128 + 127*v)
			img.Set(px, py, color.RGBA{R: c / 3, G: 90 + c/3, B: 160 + c/3, A: 255})
		}
	}
	return img
}

// writeCSV writes a weather-station style data set of about size bytes.
func writeCSV(name string, size int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	rng := rand.New(rand.NewPCG(2024, 11))
	stations := []string{"AMS", "BER", "CDG", "FRA", "LHR", "MAD", "NRT", "ORD", "SFO", "SIN", "SYD", "YYZ"}
	n, _ := fmt.Fprintln(w, "timestamp,station,temperature_c,humidity_pct,pressure_hpa,wind_ms,rain_mm")
	t := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for n < size {
		for i, s := range stations {
			base := 12 + 10*math.Sin(float64(t.YearDay())/58+float64(i))
			m, _ := fmt.Fprintf(w, "%s,%s,%.1f,%d,%.1f,%.1f,%.1f\n", t.Format(time.RFC3339), s,
				base+rng.NormFloat64()*2, 40+rng.IntN(55), 1013+rng.NormFloat64()*6,
				math.Abs(rng.NormFloat64()*4), math.Max(0, rng.NormFloat64()*1.5-0.8))
			n += m
			if n >= size {
				break
			}
		}
		t = t.Add(10 * time.Minute)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
