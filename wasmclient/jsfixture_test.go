//go:build !js

package wasmclient_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// jsFixtureTargets are the CAR responses the js/wasm tests (run under node)
// serve from testdata/js through a fake fetch.
func jsFixtureTargets(root string) map[string]string {
	p := "/ipfs/" + root
	q := "?format=car&dag-scope=entity"
	return map[string]string{
		p + "/index.html" + q:                          "index.car",
		p + "/big.bin" + q:                             "big.car",
		p + "/big.bin" + q + "&entity-bytes=1000:2999": "big-range.car",
		p + "/docs" + q:                                "docs.car",
		p + "/nope.txt" + q:                            "nope.car",
	}
}

// jsFixtureSite is the site behind testdata/js: deterministic content.
func jsFixtureSite(t *testing.T) *site {
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i*7 + i/1000)
	}
	return buildSite(t,
		fileSpec{"index.html", []byte("<!doctype html><p>hello from verity</p>")},
		fileSpec{"big.bin", big},
		fileSpec{"docs/index.html", []byte("docs")},
	)
}

// TestJSFixtures checks testdata/js against the CARs boxo serves; with
// VERITY_UPDATE_FIXTURES=1 it rewrites them.
func TestJSFixtures(t *testing.T) {
	s := jsFixtureSite(t)
	dir := filepath.Join("testdata", "js")
	update := os.Getenv("VERITY_UPDATE_FIXTURES") == "1"
	manifest := map[string]any{"root": s.root.String(), "big": strconv.Itoa(len(s.files["big.bin"])), "targets": map[string]string{}}
	for target, name := range jsFixtureTargets(s.root.String()) {
		code, car := s.car(target)
		if code != 200 {
			t.Fatalf("%s: status %d", target, code)
		}
		manifest["targets"].(map[string]string)[target] = name
		path := filepath.Join(dir, name)
		if update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, car, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with VERITY_UPDATE_FIXTURES=1)", err)
		}
		if !bytes.Equal(got, car) {
			t.Errorf("%s differs from what the gateway serves", path)
		}
	}
	if update {
		b, _ := json.MarshalIndent(manifest, "", "  ")
		if err := os.WriteFile(filepath.Join(dir, "manifest.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
