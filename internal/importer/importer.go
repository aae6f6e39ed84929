package importer

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	chunker "github.com/ipfs/boxo/chunker"
	"github.com/ipfs/boxo/ipld/merkledag"
	"github.com/ipfs/boxo/ipld/unixfs/importer/balanced"
	"github.com/ipfs/boxo/ipld/unixfs/importer/helpers"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"
	mh "github.com/multiformats/go-multihash"

	_ "github.com/verity-cdn/verity/internal/blake3mh" // zeebo/blake3 for 0x1e
	vcar "github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/unixfs"
)

// The decided settings.
const (
	ChunkSize = 256 << 10
	MaxLinks  = 174
)

// CidBuilder is the CID prefix of every dag-pb node (raw leaves use the same
// hash with the raw codec).
var CidBuilder = cid.V1Builder{Codec: cid.DagProtobuf, MhType: mh.BLAKE3, MhLength: -1}

// BlockSink receives the blocks of an import, each once.
type BlockSink interface {
	Put(ctx context.Context, c cid.Cid, data []byte) error
}

// Options of an import. The zero value selects Verity's settings; the fields
// exist for tests and tools that need small DAGs of a given shape, and other
// values give CIDs nobody else will reproduce.
type Options struct {
	ChunkSize        int // default ChunkSize
	MaxLinks         int // default MaxLinks
	HAMTShardingSize int // default boxo's uio.HAMTShardingSize
}

func (o Options) normalize() Options {
	if o.ChunkSize <= 0 {
		o.ChunkSize = ChunkSize
	}
	if o.MaxLinks <= 0 {
		o.MaxLinks = MaxLinks
	}
	return o
}

// Import imports the file or directory at path into dst and returns the root.
func Import(ctx context.Context, path string, dst BlockSink, opts Options) (cid.Cid, error) {
	im := &importer{opts: opts.normalize(), dst: dst, seen: make(map[string]bool), dirs: make(map[string]ipld.Node)}
	im.ds = &dagService{im: im}
	fi, err := os.Lstat(path)
	if err != nil {
		return cid.Undef, err
	}
	nd, err := im.add(ctx, path, fi)
	if err != nil {
		return cid.Undef, err
	}
	if err := im.flushDirs(ctx, nd); err != nil {
		return cid.Undef, err
	}
	return nd.Cid(), nil
}

type importer struct {
	opts Options
	dst  BlockSink
	ds   *dagService
	seen map[string]bool      // CIDs already sent to dst
	dirs map[string]ipld.Node // directory and HAMT shard nodes, sent once reachable
}

func (im *importer) add(ctx context.Context, path string, fi os.FileInfo) (ipld.Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch mode := fi.Mode(); {
	case mode&os.ModeSymlink != 0:
		return nil, fmt.Errorf("%w: %s", ErrSymlink, path)
	case mode.IsDir():
		return im.addDir(ctx, path)
	case mode.IsRegular():
		return im.addFile(ctx, path)
	default:
		return nil, fmt.Errorf("%w: %s (%s)", ErrSpecialFile, path, mode.Type())
	}
}

func (im *importer) addFile(ctx context.Context, path string) (ipld.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	params := helpers.DagBuilderParams{
		Dagserv:    im.ds,
		RawLeaves:  true,
		Maxlinks:   im.opts.MaxLinks,
		CidBuilder: CidBuilder,
	}
	spl := chunker.NewSizeSplitter(f, int64(im.opts.ChunkSize))
	if fi, err := f.Stat(); err == nil && fi.Size() > 2*int64(im.opts.ChunkSize) {
		// Chunks read and hashed ahead, on the other core (aheadsplitter.go).
		ahead := newAheadSplitter(spl, CidBuilder.MhType)
		defer ahead.stop()
		spl, params.CidBuilder = ahead, aheadBuilder{V1Builder: CidBuilder, s: ahead}
	}
	db, err := params.New(spl)
	if err != nil {
		return nil, err
	}
	nd, err := balanced.Layout(db)
	if err != nil {
		return nil, fmt.Errorf("importing %s: %w", path, err)
	}
	return nd, nil
}

func (im *importer) addDir(ctx context.Context, path string) (ipld.Node, error) {
	entries, err := os.ReadDir(path) // sorted by name
	if err != nil {
		return nil, err
	}
	dir, err := uio.NewDirectory(im.ds, uio.WithCidBuilder(CidBuilder))
	if err != nil {
		return nil, err
	}
	if im.opts.HAMTShardingSize > 0 {
		dir.SetHAMTShardingSize(im.opts.HAMTShardingSize)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, err
		}
		nd, err := im.add(ctx, filepath.Join(path, e.Name()), fi)
		if err != nil {
			return nil, err
		}
		if err := dir.AddChild(ctx, e.Name(), nd); err != nil {
			return nil, fmt.Errorf("adding %s: %w", filepath.Join(path, e.Name()), err)
		}
	}
	nd, err := dir.GetNode()
	if err != nil {
		return nil, err
	}
	if err := im.ds.Add(ctx, nd); err != nil {
		return nil, err
	}
	return nd, nil
}

// flushDirs sends the directory and shard nodes reachable from nd, skipping
// intermediate states boxo stored while building directories.
func (im *importer) flushDirs(ctx context.Context, nd ipld.Node) error {
	if err := im.put(ctx, nd); err != nil {
		return err
	}
	for _, l := range nd.Links() {
		child, ok := im.dirs[l.Cid.KeyString()]
		if !ok {
			continue // file blocks were sent as they were made
		}
		if err := im.flushDirs(ctx, child); err != nil {
			return err
		}
	}
	return nil
}

func (im *importer) put(ctx context.Context, nd ipld.Node) error {
	k := nd.Cid().KeyString()
	if im.seen[k] {
		return nil
	}
	im.seen[k] = true
	return im.dst.Put(ctx, nd.Cid(), nd.RawData())
}

// dagService is the ipld.DAGService boxo builds into: file blocks go straight
// to the sink; directory nodes wait in memory until the root is known.
type dagService struct {
	im *importer
}

var _ ipld.DAGService = (*dagService)(nil)

func isDirNode(nd ipld.Node) bool {
	pn, ok := nd.(*merkledag.ProtoNode)
	if !ok {
		return false
	}
	fs, err := unixfs.DecodeData(pn.Data())
	return err == nil && (fs.Type == unixfs.TDirectory || fs.Type == unixfs.THAMTShard)
}

func (s *dagService) Add(ctx context.Context, nd ipld.Node) error {
	if isDirNode(nd) {
		s.im.dirs[nd.Cid().KeyString()] = nd
		return nil
	}
	return s.im.put(ctx, nd)
}

func (s *dagService) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		if err := s.Add(ctx, nd); err != nil {
			return err
		}
	}
	return nil
}

func (s *dagService) Get(ctx context.Context, c cid.Cid) (ipld.Node, error) {
	if nd, ok := s.im.dirs[c.KeyString()]; ok {
		return nd, nil
	}
	return nil, ipld.ErrNotFound{Cid: c}
}

func (s *dagService) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		nd, err := s.Get(ctx, c)
		out <- &ipld.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (s *dagService) Remove(ctx context.Context, c cid.Cid) error {
	delete(s.im.dirs, c.KeyString())
	return nil
}

func (s *dagService) RemoveMany(ctx context.Context, cs []cid.Cid) error {
	for _, c := range cs {
		delete(s.im.dirs, c.KeyString())
	}
	return nil
}

// WriteCAR imports path and writes a CARv1 with the root as its only root
// and every block of the DAG once. The header, which names the root, comes
// first: into a file (an *os.File, or anything with its Seek, ReadAt and
// Truncate) the blocks are written after room left for the header, which
// is written last (writeCARInPlace); into any other writer they are
// spooled to a temporary file first. Either way w is left at the CAR's end.
func WriteCAR(ctx context.Context, path string, w io.Writer, opts Options) (cid.Cid, error) {
	if f, ok := w.(carFile); ok {
		return writeCARInPlace(ctx, path, f, opts)
	}
	spool, err := os.CreateTemp("", "verity-import-*.car")
	if err != nil {
		return cid.Undef, err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	sink := &carSink{w: vcar.NewBlockWriter(spool)}
	root, err := Import(ctx, path, sink, opts)
	if err != nil {
		return cid.Undef, err
	}
	if err := writeHeader(w, root); err != nil {
		return cid.Undef, err
	}
	if _, err := spool.Seek(0, io.SeekStart); err != nil {
		return cid.Undef, err
	}
	if _, err := io.Copy(w, spool); err != nil {
		return cid.Undef, err
	}
	return root, nil
}
