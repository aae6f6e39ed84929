package s3api

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sync"

	"github.com/ipfs/boxo/ipld/merkledag"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	carv2 "github.com/ipld/go-car/v2"
	carbs "github.com/ipld/go-car/v2/blockstore"
	"github.com/ipld/go-car/v2/index"
)

// objectReader reads an object's bytes from its stored CAR.
type objectReader struct {
	uio.DagReader
	f *os.File
}

func (o *objectReader) Close() error {
	o.DagReader.Close()
	return o.f.Close()
}

// openObject opens o's bytes: its UnixFS DAG read from the CAR the
// content store verified when it was stored.
func (s *Server) openObject(ctx context.Context, o *object) (*objectReader, error) {
	c, err := cid.Parse(o.CID)
	if err != nil {
		return nil, fmt.Errorf("s3api: object CID: %w", err)
	}
	var f *os.File
	if b, ok := s.cfg.Store.(boundedOpener); ok {
		f, err = b.OpenCARWithin(ctx, o.CID, carBytes(max(o.Size, int64(min(o.TSize, math.MaxInt64)))))
	} else {
		f, err = s.cfg.Store.OpenCAR(ctx, o.CID)
	}
	if err != nil {
		return nil, err
	}
	idx, err := s.indexes.get(o.CID, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	rd, err := dagReader(ctx, f, c, idx)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &objectReader{DagReader: rd, f: f}, nil
}

// boundedOpener is a ContentStore that bounds a CAR it fetches from
// nodes by what the caller knows of its size (control.Control).
type boundedOpener interface {
	OpenCARWithin(ctx context.Context, root string, maxBytes int64) (*os.File, error)
}

func dagReader(ctx context.Context, f io.ReaderAt, c cid.Cid, idx index.Index) (uio.DagReader, error) {
	bs, err := carbs.NewReadOnly(io.NewSectionReader(f, 0, math.MaxInt64), idx)
	if err != nil {
		return nil, fmt.Errorf("s3api: read CAR: %w", err)
	}
	ng := &carNodes{bs: bs}
	nd, err := ng.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	return uio.NewDagReader(ctx, nd, ng)
}

// indexCache keeps the block index of the CARs read lately, so a GET
// does not scan its object's CAR again (a CAR's content never changes:
// it is named by its root, and the file by its size and time).
type indexCache struct {
	mu    sync.Mutex
	m     map[string]index.Index
	order []string // oldest first
}

const maxIndexes = 512

func (c *indexCache) get(root string, f *os.File) (index.Index, error) {
	// The file's size and time too: a CAR fetched again from a node may
	// hold the same blocks in another order.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("s3api: index CAR: %w", err)
	}
	root = fmt.Sprintf("%s/%d/%d", root, fi.Size(), fi.ModTime().UnixNano())
	c.mu.Lock()
	idx, ok := c.m[root]
	c.mu.Unlock()
	if ok {
		return idx, nil
	}
	idx, err = carv2.GenerateIndex(io.NewSectionReader(f, 0, math.MaxInt64))
	if err != nil {
		return nil, fmt.Errorf("s3api: index CAR: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]index.Index{}
	}
	if _, ok := c.m[root]; !ok {
		c.m[root] = idx
		c.order = append(c.order, root)
		if len(c.order) > maxIndexes {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
	}
	return idx, nil
}

// dagSize is the cumulative size of the DAG at c in a CAR (what a
// directory's link to it records).
func dagSize(f io.ReaderAt, c cid.Cid) (uint64, error) {
	bs, err := carbs.NewReadOnly(io.NewSectionReader(f, 0, math.MaxInt64), nil)
	if err != nil {
		return 0, fmt.Errorf("s3api: read CAR: %w", err)
	}
	nd, err := (&carNodes{bs: bs}).Get(context.Background(), c)
	if err != nil {
		return 0, err
	}
	return nd.Size()
}

// carNodes is an ipld.NodeGetter over a CAR's blocks.
type carNodes struct{ bs *carbs.ReadOnly }

func (g *carNodes) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	b, err := g.bs.Get(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("s3api: block %s: %w", c, err)
	}
	return decodeNode(b)
}

func decodeNode(b blocks.Block) (ipld.Node, error) {
	switch b.Cid().Type() {
	case cid.Raw:
		return merkledag.NewRawNodeWPrefix(b.RawData(), b.Cid().Prefix())
	case cid.DagProtobuf:
		nd, err := merkledag.DecodeProtobufBlock(b)
		if err != nil {
			return nil, fmt.Errorf("s3api: block %s: %w", b.Cid(), err)
		}
		return nd, nil
	}
	return nil, fmt.Errorf("s3api: block %s: unexpected codec", b.Cid())
}

func (g *carNodes) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		nd, err := g.Get(ctx, c)
		out <- &ipld.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}
