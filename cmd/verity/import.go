package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/importer"
)

// runImport imports a file or directory with Verity's UnixFS settings and
// prints only its root CID on stdout; with --car it also writes a CARv1 of
// every block.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	carPath := fs.String("car", "", "also write a CARv1 of all blocks to `FILE` (the root is the CAR root)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: verity import [--car FILE] PATH\n\nImports PATH (a file or directory) as UnixFS (CIDv1, raw leaves, 256 KiB chunks,\nBLAKE3, balanced layout with 174 links) and prints its root CID.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("import: %v: %w", err, errUsage)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return fmt.Errorf("import: need exactly one PATH: %w", errUsage)
	}
	src := fs.Arg(0)

	var (
		root cid.Cid
		err  error
		st   = &countSink{}
	)
	if *carPath == "" {
		root, err = importer.Import(ctx, src, st, importer.Options{})
	} else {
		root, err = writeCARFile(ctx, src, *carPath)
	}
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if *carPath == "" {
		fmt.Fprintf(stderr, "imported %s: %d blocks, %d bytes\n", src, st.blocks, st.bytes)
	} else {
		fmt.Fprintf(stderr, "imported %s, wrote %s\n", src, *carPath)
	}
	_, err = fmt.Fprintln(stdout, root.String())
	return err
}

// writeCARFile writes the CAR next to its destination and renames it into
// place, so that a failed import never leaves a partial file behind.
func writeCARFile(ctx context.Context, src, dst string) (cid.Cid, error) {
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".verity-import-*.car")
	if err != nil {
		return cid.Undef, err
	}
	defer os.Remove(tmp.Name())
	root, err := importer.WriteCAR(ctx, src, tmp, importer.Options{})
	if err != nil {
		tmp.Close()
		return cid.Undef, err
	}
	if err := tmp.Close(); err != nil {
		return cid.Undef, err
	}
	return root, os.Rename(tmp.Name(), dst)
}

type countSink struct {
	blocks int
	bytes  int64
}

func (s *countSink) Put(_ context.Context, _ cid.Cid, data []byte) error {
	s.blocks++
	s.bytes += int64(len(data))
	return nil
}
