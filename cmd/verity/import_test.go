package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
)

func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site")
	if err := os.MkdirAll(filepath.Join(site, "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>hi</h1>"), 0o644)
	os.WriteFile(filepath.Join(site, "css", "a.css"), []byte("a{}"), 0o644)

	var out, errb bytes.Buffer
	if err := runImport(context.Background(), []string{site}, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	root := strings.TrimSpace(out.String())
	c, err := cid.Parse(root)
	if err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("stdout %q is not one CID: %v", out.String(), err)
	}

	carFile := filepath.Join(dir, "site.car")
	out.Reset()
	if err := runImport(context.Background(), []string{"--car", carFile, site}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out.String()) != root {
		t.Fatalf("--car printed %q, want %s", out.String(), root)
	}
	f, err := os.Open(carFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := car.NewReader(f, car.Config{})
	if err != nil || len(r.Roots()) != 1 || !r.Roots()[0].Equal(c) {
		t.Fatalf("CAR roots %v: %v", r.Roots(), err)
	}

	for _, args := range [][]string{{}, {"a", "b"}, {"--nope", site}} {
		if err := runImport(context.Background(), args, &out, &errb); !errors.Is(err, errUsage) {
			t.Fatalf("%v: err = %v, want usage error", args, err)
		}
	}
	if err := runImport(context.Background(), []string{filepath.Join(dir, "missing")}, &out, &errb); err == nil {
		t.Fatal("missing path accepted")
	}
}
