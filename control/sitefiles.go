package control

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/carcheck"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/headers"
	"github.com/verity-cdn/verity/internal/redirects"
	"github.com/verity-cdn/verity/internal/unixfs"
)

// CodeSiteFile is the error code (422) of a deploy whose _headers or
// _redirects file does not parse (the gateway would answer every path
// (_headers) or every missing path (_redirects) of the published site
// 500), or whose _redirects rules redirect in a loop.
const CodeSiteFile = "bad_site_file"

// siteFiles are the root-level files checked at deploy, with their
// parsers and size bounds.
var siteFiles = []struct {
	name  string
	max   int
	parse func([]byte) error
}{
	{headers.FileName, headers.MaxSize, func(b []byte) error { _, err := headers.Parse(b); return err }},
	{redirects.FileName, redirects.MaxSize, func(b []byte) error { _, err := redirects.Parse(b); return err }},
}

// checkSiteFiles parses the _headers and _redirects files at the root of
// the verified CAR in r (rewound for each pass), when the root is a basic
// directory holding them. A file that does not parse is a *carcheck.Error
// with CodeSiteFile naming the file and line. Sharded directories are not
// looked into: the gateway still refuses a bad file when serving.
func checkSiteFiles(r io.ReadSeeker, root cid.CID) error {
	if root.Codec != cid.CodecDagPB {
		return nil // a single file
	}
	blocks, err := carBlocks(r, map[string]bool{root.String(): true})
	if err != nil {
		return err
	}
	node, err := unixfs.DecodeNode(blocks[root.String()])
	if err != nil {
		return nil // carcheck accepted it; not ours to judge
	}
	want := map[string]bool{}
	links := map[string]cid.CID{}
	for _, f := range siteFiles {
		if lk, ok := unixfs.LookupDir(node, f.name); ok {
			want[lk.Hash.String()] = true
			links[f.name] = lk.Hash
		}
	}
	if len(want) == 0 {
		return nil
	}
	if blocks, err = carBlocks(r, want); err != nil {
		return err
	}
	for _, f := range siteFiles {
		c, ok := links[f.name]
		if !ok {
			continue
		}
		b, err := fileBytes(c, blocks[c.String()], f.max)
		if err == nil {
			err = f.parse(b)
		}
		if err == nil && f.name == redirects.FileName {
			err = redirectLoop(r, root, node, b)
		}
		if err != nil {
			return &carcheck.Error{Code: CodeSiteFile, CID: c.String(), Detail: f.name + ": " + err.Error()}
		}
	}
	return nil
}

// redirectLoop refuses _redirects rules (b, which parse) that redirect
// without end for paths the root does not have. Which paths it has comes
// from its directories, read from the CAR in r in one pass (directory
// blocks only); under a sharded directory every path counts as present,
// so a loop through one is not found rather than a site refused.
func redirectLoop(r io.ReadSeeker, root cid.CID, rootNode unixfs.Node, b []byte) error {
	rules, _ := redirects.Parse(b)
	if len(rules) == 0 {
		return nil
	}
	dirs, err := carDirs(r)
	if err != nil {
		return err
	}
	dirs[root.String()] = dirNode{node: rootNode}
	exists := func(p string) bool {
		cur := root.String()
		for _, seg := range strings.Split(strings.Trim(p, "/"), "/") {
			if seg == "" {
				continue
			}
			name, err := url.PathUnescape(seg)
			if err != nil {
				return false
			}
			d, ok := dirs[cur]
			if !ok {
				return false // a file with more path after it
			}
			if d.sharded {
				return true
			}
			lk, ok := unixfs.LookupDir(d.node, name)
			if !ok {
				return false
			}
			cur = lk.Hash.String()
		}
		return true
	}
	return rules.Loop(exists)
}

// dirNode is a directory block of a deploy's CAR.
type dirNode struct {
	node    unixfs.Node
	sharded bool
}

// carDirs reads the CAR in r from its start and returns its UnixFS
// directory blocks by CID.
func carDirs(r io.ReadSeeker) (map[string]dirNode, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("control: reread CAR: %w", err)
	}
	cr, err := car.NewReader(r, car.Config{})
	if err != nil {
		return nil, fmt.Errorf("control: reread CAR: %w", err)
	}
	out := map[string]dirNode{}
	for {
		c, data, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("control: reread CAR: %w", err)
		}
		if c.Codec != cid.CodecDagPB {
			continue
		}
		n, err := unixfs.DecodeNode(data)
		if err != nil {
			continue
		}
		fs, err := unixfs.DecodeData(n.Data)
		if err != nil {
			continue
		}
		switch fs.Type {
		case unixfs.TDirectory:
			out[c.String()] = dirNode{node: n}
		case unixfs.THAMTShard:
			out[c.String()] = dirNode{node: n, sharded: true}
		}
	}
}

// fileBytes is the content of a one-block file: a raw leaf, or a dag-pb
// UnixFS file without links.
func fileBytes(c cid.CID, b []byte, max int) ([]byte, error) {
	if c.Codec == cid.CodecRaw {
		if len(b) > max {
			return nil, fmt.Errorf("larger than %d bytes", max)
		}
		return b, nil
	}
	n, err := unixfs.DecodeNode(b)
	if err != nil {
		return nil, err
	}
	if len(n.Links) > 0 {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	fs, err := unixfs.DecodeData(n.Data)
	if err != nil {
		return nil, err
	}
	if fs.Type != unixfs.TFile && fs.Type != unixfs.TRaw {
		return nil, errors.New("not a file")
	}
	if len(fs.Data) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return fs.Data, nil
}

// carBlocks reads the CAR in r from its start and returns the blocks whose
// CID keys want names.
func carBlocks(r io.ReadSeeker, want map[string]bool) (map[string][]byte, error) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("control: reread CAR: %w", err)
	}
	cr, err := car.NewReader(r, car.Config{})
	if err != nil {
		return nil, fmt.Errorf("control: reread CAR: %w", err)
	}
	out := map[string][]byte{}
	for len(out) < len(want) {
		c, data, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("control: reread CAR: %w", err)
		}
		if k := c.String(); want[k] {
			out[k] = data
		}
	}
	return out, nil
}
