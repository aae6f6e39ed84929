package s3api

import (
	"context"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"

	ft "github.com/ipfs/boxo/ipld/unixfs"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/verity-cdn/verity/internal/car"
	vcid "github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/importer"
)

// A bucket's content root is its tree of keys as a UnixFS directory,
// built with the importer's settings (internal/importer: CIDv1, BLAKE3,
// HAMT-sharded beyond boxo's threshold), so it is the root `verity
// import` (or `ipfs add -r` with the same settings) gives a directory
// holding the same files: "a/b.txt" is file b.txt in directory a. A key
// ending in "/" with no bytes (a client's folder marker) is an empty
// directory. Keys that cannot be a path in such a tree (an empty
// segment, "." or "..", a name that is both a file and a directory) are
// refused when written (InvalidArgument).

// treeNode is a directory of the tree being built.
type treeNode struct {
	files map[string]*object
	dirs  map[string]*treeNode
}

func newTreeNode() *treeNode {
	return &treeNode{files: map[string]*object{}, dirs: map[string]*treeNode{}}
}

// keyError refuses a key the tree cannot hold.
func keyError(key, why string) error {
	return ErrInvalidArgument.with("The key %q cannot be stored: %s.", clip(key), why)
}

// buildTree arranges objs as a directory tree.
func buildTree(objs map[string]*object) (*treeNode, error) {
	top := newTreeNode()
	for _, key := range slices.Sorted(maps.Keys(objs)) {
		o := objs[key]
		marker := strings.HasSuffix(key, "/")
		segs := strings.Split(strings.TrimSuffix(key, "/"), "/")
		n := top
		for i, seg := range segs {
			if seg == "" || seg == "." || seg == ".." {
				return nil, keyError(key, "a key's path segments must not be empty, \".\" or \"..\"")
			}
			last := i == len(segs)-1
			if last && !marker {
				if _, ok := n.dirs[seg]; ok {
					return nil, keyError(key, "it names a file where other keys make a directory")
				}
				n.files[seg] = o
				break
			}
			if _, ok := n.files[seg]; ok {
				return nil, keyError(key, "it makes a directory where another key is a file")
			}
			d, ok := n.dirs[seg]
			if !ok {
				d = newTreeNode()
				n.dirs[seg] = d
			}
			n = d
		}
		if marker && o.Size != 0 {
			return nil, keyError(key, "a key ending in \"/\" is a folder and holds no bytes")
		}
	}
	return top, nil
}

// bucketRoot returns the root of the tree of objs.
func bucketRoot(objs map[string]*object) (cid.Cid, error) {
	root, _, err := bucketDAG(objs)
	return root, err
}

// bucketDAG returns the root of the tree of objs and its directory nodes
// (HAMT shards included), by CID.
func bucketDAG(objs map[string]*object) (cid.Cid, *memDAG, error) {
	top, err := buildTree(objs)
	if err != nil {
		return cid.Undef, nil, err
	}
	ds := &memDAG{nodes: map[string]ipld.Node{}}
	nd, err := top.build(context.Background(), ds)
	if err != nil {
		return cid.Undef, nil, err
	}
	return nd.Cid(), ds, nil
}

// writeDirCAR writes the CAR of root's own blocks: the directory nodes
// of ds reachable from root (the root first, then depth-first), without
// the objects they link to, which are placed on their own. It is the
// partial CAR the control plane places for a bucket's root
// (ContentStore.StoreRoot).
func writeDirCAR(w io.Writer, root cid.Cid, ds *memDAG) error {
	vroot, _, err := vcid.Decode(root.Bytes())
	if err != nil {
		return err
	}
	cw, err := car.NewWriter(w, []vcid.CID{vroot})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		nd, err := ds.Get(context.Background(), c)
		ok := err == nil
		if _, file := nd.(*linkNode); !ok || file || seen[c.KeyString()] {
			continue // an object's root (boxo's HAMT adds it), or a shard seen already
		}
		seen[c.KeyString()] = true
		if err := cw.PutRaw(c.Bytes(), nd.RawData()); err != nil {
			return err
		}
		links := nd.Links()
		for i := len(links) - 1; i >= 0; i-- {
			stack = append(stack, links[i].Cid)
		}
	}
	return nil
}

func (t *treeNode) build(ctx context.Context, ds *memDAG) (ipld.Node, error) {
	names := slices.Sorted(maps.Keys(t.files))
	names = append(names, slices.Sorted(maps.Keys(t.dirs))...)
	slices.Sort(names)
	children := make([]ipld.Node, len(names))
	for i, name := range names {
		if o, ok := t.files[name]; ok {
			c, err := cid.Parse(o.CID)
			if err != nil {
				return nil, err
			}
			children[i] = &linkNode{c: c, size: o.TSize}
		} else {
			nd, err := t.dirs[name].build(ctx, ds)
			if err != nil {
				return nil, err
			}
			children[i] = nd
		}
	}
	return buildDir(ctx, ds, names, children)
}

// buildDir makes the directory of names (sorted) linking to children,
// as the importer does: a basic directory while boxo's estimate of its
// size (names and CIDs) is at most HAMTShardingSize, a HAMT past it.
// The node is added to ds (a HAMT's shards too).
func buildDir(ctx context.Context, ds *memDAG, names []string, children []ipld.Node) (ipld.Node, error) {
	estimate := 0 // boxo's estimate of a directory's size: names and CIDs
	for i, name := range names {
		estimate += len(name) + children[i].Cid().ByteLen()
	}
	var nd ipld.Node
	if estimate <= uio.HAMTShardingSize {
		// A basic directory, as boxo makes it (an empty folder node plus
		// one link per entry, sorted by name), without boxo's per-entry
		// scan of the links already added.
		pn := ft.EmptyDirNode()
		pn.SetCidBuilder(importer.CidBuilder)
		for i, name := range names {
			if err := pn.AddNodeLink(name, children[i]); err != nil {
				return nil, err
			}
		}
		nd = pn
	} else {
		dir, err := uio.NewDirectory(ds, uio.WithCidBuilder(importer.CidBuilder))
		if err != nil {
			return nil, err
		}
		for i, name := range names {
			if err := dir.AddChild(ctx, name, children[i]); err != nil {
				return nil, err
			}
		}
		if nd, err = dir.GetNode(); err != nil {
			return nil, err
		}
	}
	return nd, ds.Add(ctx, nd)
}

// linkNode stands for a file of the tree: a directory link needs only
// its CID and cumulative size, not its blocks.
type linkNode struct {
	c    cid.Cid
	size uint64
}

var _ ipld.Node = (*linkNode)(nil)

func (n *linkNode) Cid() cid.Cid          { return n.c }
func (n *linkNode) Size() (uint64, error) { return n.size, nil }
func (n *linkNode) RawData() []byte       { return nil }
func (n *linkNode) String() string        { return n.c.String() }
func (n *linkNode) Loggable() map[string]interface{} {
	return map[string]interface{}{"cid": n.c.String()}
}
func (n *linkNode) Tree(string, int) []string     { return nil }
func (n *linkNode) Links() []*ipld.Link           { return nil }
func (n *linkNode) Copy() ipld.Node               { c := *n; return &c }
func (n *linkNode) Stat() (*ipld.NodeStat, error) { return &ipld.NodeStat{Hash: n.c.String()}, nil }
func (n *linkNode) Resolve([]string) (interface{}, []string, error) {
	return nil, nil, ipld.ErrNotFound{Cid: n.c}
}
func (n *linkNode) ResolveLink([]string) (*ipld.Link, []string, error) {
	return nil, nil, ipld.ErrNotFound{Cid: n.c}
}

// memDAG keeps the directory nodes built (HAMT shards are read back
// while a directory is built).
// A bucket's memDAG is shared by the tree cache and the roots queued for
// placement: it is safe for concurrent use.
type memDAG struct {
	mu    sync.RWMutex
	nodes map[string]ipld.Node
}

var _ ipld.DAGService = (*memDAG)(nil)

func (d *memDAG) Add(_ context.Context, nd ipld.Node) error {
	d.mu.Lock()
	d.nodes[nd.Cid().KeyString()] = nd
	d.mu.Unlock()
	return nil
}

func (d *memDAG) len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.nodes)
}

func (d *memDAG) AddMany(ctx context.Context, nds []ipld.Node) error {
	for _, nd := range nds {
		_ = d.Add(ctx, nd)
	}
	return nil
}

func (d *memDAG) Get(_ context.Context, c cid.Cid) (ipld.Node, error) {
	d.mu.RLock()
	nd, ok := d.nodes[c.KeyString()]
	d.mu.RUnlock()
	if ok {
		return nd, nil
	}
	return nil, ipld.ErrNotFound{Cid: c}
}

func (d *memDAG) GetMany(ctx context.Context, cs []cid.Cid) <-chan *ipld.NodeOption {
	out := make(chan *ipld.NodeOption, len(cs))
	for _, c := range cs {
		nd, err := d.Get(ctx, c)
		out <- &ipld.NodeOption{Node: nd, Err: err}
	}
	close(out)
	return out
}

func (d *memDAG) Remove(_ context.Context, c cid.Cid) error {
	d.mu.Lock()
	delete(d.nodes, c.KeyString())
	d.mu.Unlock()
	return nil
}

func (d *memDAG) RemoveMany(ctx context.Context, cs []cid.Cid) error {
	for _, c := range cs {
		_ = d.Remove(ctx, c)
	}
	return nil
}

// clip shortens s for a message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
