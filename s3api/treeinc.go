package s3api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	mdag "github.com/ipfs/boxo/ipld/merkledag"
	ft "github.com/ipfs/boxo/ipld/unixfs"
	"github.com/ipfs/boxo/ipld/unixfs/hamt"
	uio "github.com/ipfs/boxo/ipld/unixfs/io"
	"github.com/ipfs/go-cid"
	ipld "github.com/ipfs/go-ipld-format"

	"github.com/verity-cdn/verity/internal/importer"
)

// A change to a bucket rebuilds only the directories on its keys' paths
// (for a HAMT directory, the shards on the path), from the directory
// blocks of the bucket's current root, which each gateway keeps in
// memory (treeCache) from the last change it made or read. The result
// is the root bucketDAG gives the whole index (TestIncrementalTree): a
// directory is basic while boxo's estimate of its size (names and CIDs)
// is at most HAMTShardingSize, and a HAMT past it, as the importer
// makes it. A gateway whose tree is not the record's root (another
// gateway made the last change, or it started since) builds it from
// the whole index once.

// treeEdit changes the tree in ds.
type treeEdit struct {
	ds *memDAG
	// has reports whether a key is in the index after the change (a
	// directory left empty stays when its folder marker does).
	has func(key string) (bool, error)
}

// dirNode returns c's directory node, or nil when c is not a directory
// of the tree (a file).
func (e *treeEdit) dirNode(c cid.Cid) *mdag.ProtoNode {
	nd, err := e.ds.Get(context.Background(), c)
	if err != nil {
		return nil
	}
	pn, _ := nd.(*mdag.ProtoNode)
	return pn
}

func isHAMT(pn *mdag.ProtoNode) bool {
	fs, err := ft.FSNodeFromBytes(pn.Data())
	return err == nil && fs.Type() == ft.THAMTShard
}

// child returns dir's link named name, or nil.
func (e *treeEdit) child(ctx context.Context, dir *mdag.ProtoNode, name string) (*ipld.Link, error) {
	if !isHAMT(dir) {
		l, err := dir.GetNodeLink(name)
		if errors.Is(err, mdag.ErrLinkNotFound) {
			return nil, nil
		}
		return l, err
	}
	sh, err := hamt.NewHamtFromDag(e.ds, dir)
	if err != nil {
		return nil, err
	}
	l, err := sh.Find(ctx, name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return l, err
}

// childNode is what a link of the tree points to, for a directory's
// link to it: a directory node of ds, or a file's CID and size.
func (e *treeEdit) childNode(l *ipld.Link) ipld.Node {
	if pn := e.dirNode(l.Cid); pn != nil {
		return pn
	}
	return &linkNode{c: l.Cid, size: l.Size}
}

// entry is a directory's entry.
type entry struct {
	name string
	nd   ipld.Node
}

// basic builds a directory from its entries as treeNode.build does:
// basic while boxo's estimate allows, a HAMT past it.
func (e *treeEdit) basic(ctx context.Context, entries []entry) (*mdag.ProtoNode, error) {
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.name, b.name) })
	names := make([]string, len(entries))
	children := make([]ipld.Node, len(entries))
	for i, en := range entries {
		names[i], children[i] = en.name, en.nd
	}
	nd, err := buildDir(ctx, e.ds, names, children)
	if err != nil {
		return nil, err
	}
	pn, ok := nd.(*mdag.ProtoNode)
	if !ok {
		return nil, fmt.Errorf("s3api: directory is not dag-pb")
	}
	return pn, nil
}

func (e *treeEdit) entries(dir *mdag.ProtoNode) []entry {
	var out []entry
	for _, l := range dir.Links() {
		out = append(out, entry{name: l.Name, nd: e.childNode(l)})
	}
	return out
}

// set returns dir with name linking to nd (replaced or added).
func (e *treeEdit) set(ctx context.Context, dir *mdag.ProtoNode, name string, nd ipld.Node) (*mdag.ProtoNode, error) {
	if isHAMT(dir) {
		sh, err := hamt.NewHamtFromDag(e.ds, dir)
		if err != nil {
			return nil, err
		}
		sh.SetCidBuilder(importer.CidBuilder)
		if _, err := sh.Swap(ctx, name, nd); err != nil {
			return nil, err
		}
		out, err := sh.Node()
		if err != nil {
			return nil, err
		}
		return out.(*mdag.ProtoNode), nil
	}
	entries := slices.DeleteFunc(e.entries(dir), func(en entry) bool { return en.name == name })
	return e.basic(ctx, append(entries, entry{name: name, nd: nd}))
}

// errBigEnough stops counting a HAMT's entries.
var errBigEnough = errors.New("big enough")

// remove returns dir without name, and whether it is now empty.
func (e *treeEdit) remove(ctx context.Context, dir *mdag.ProtoNode, name string) (*mdag.ProtoNode, bool, error) {
	if !isHAMT(dir) {
		entries := slices.DeleteFunc(e.entries(dir), func(en entry) bool { return en.name == name })
		out, err := e.basic(ctx, entries)
		return out, len(entries) == 0, err
	}
	sh, err := hamt.NewHamtFromDag(e.ds, dir)
	if err != nil {
		return nil, false, err
	}
	sh.SetCidBuilder(importer.CidBuilder)
	if _, err := sh.Take(ctx, name); err != nil {
		return nil, false, err
	}
	// Below the threshold again: a basic directory, as the importer
	// would make it. Counting stops once past it.
	var links []*ipld.Link
	size := 0
	err = sh.ForEachLink(ctx, func(l *ipld.Link) error {
		size += len(l.Name) + l.Cid.ByteLen()
		if size > uio.HAMTShardingSize {
			return errBigEnough
		}
		c := *l
		links = append(links, &c)
		return nil
	})
	if err != nil && !errors.Is(err, errBigEnough) {
		return nil, false, err
	}
	if err == nil {
		entries := make([]entry, len(links))
		for i, l := range links {
			entries[i] = entry{name: l.Name, nd: e.childNode(l)}
		}
		out, err := e.basic(ctx, entries)
		return out, len(entries) == 0, err
	}
	out, err := sh.Node()
	if err != nil {
		return nil, false, err
	}
	return out.(*mdag.ProtoNode), false, nil
}

// put records key → o (a file) or, for a folder marker, the directory.
func (e *treeEdit) put(ctx context.Context, dir *mdag.ProtoNode, key string, segs []string, o *object) (*mdag.ProtoNode, error) {
	name := segs[0]
	marker := strings.HasSuffix(key, "/")
	l, err := e.child(ctx, dir, name)
	if err != nil {
		return nil, err
	}
	if len(segs) == 1 && !marker {
		if l != nil && e.dirNode(l.Cid) != nil {
			return nil, keyError(key, "it names a file where other keys make a directory")
		}
		c, err := cid.Parse(o.CID)
		if err != nil {
			return nil, err
		}
		return e.set(ctx, dir, name, &linkNode{c: c, size: o.TSize})
	}
	var sub *mdag.ProtoNode
	if l != nil {
		if sub = e.dirNode(l.Cid); sub == nil {
			return nil, keyError(key, "it makes a directory where another key is a file")
		}
	} else {
		sub = ft.EmptyDirNode()
		sub.SetCidBuilder(importer.CidBuilder)
	}
	if len(segs) > 1 {
		if sub, err = e.put(ctx, sub, key, segs[1:], o); err != nil {
			return nil, err
		}
	}
	if err := e.ds.Add(ctx, sub); err != nil {
		return nil, err
	}
	return e.set(ctx, dir, name, sub)
}

// del removes key; path is the directory dir is ("" or "a/b/"). A
// directory left empty goes unless its folder marker is still a key.
func (e *treeEdit) del(ctx context.Context, dir *mdag.ProtoNode, path, key string, segs []string) (*mdag.ProtoNode, bool, error) {
	name := segs[0]
	marker := strings.HasSuffix(key, "/")
	l, err := e.child(ctx, dir, name)
	if err != nil || l == nil {
		return dir, false, err // not in the tree: nothing to do
	}
	if len(segs) == 1 && !marker {
		return e.remove(ctx, dir, name)
	}
	sub := e.dirNode(l.Cid)
	if sub == nil {
		return dir, false, nil
	}
	empty := len(sub.Links()) == 0
	if len(segs) > 1 {
		if sub, empty, err = e.del(ctx, sub, path+name+"/", key, segs[1:]); err != nil {
			return nil, false, err
		}
	}
	if empty {
		kept, err := e.has(path + name + "/")
		if err != nil {
			return nil, false, err
		}
		if !kept {
			return e.remove(ctx, dir, name)
		}
	}
	if err := e.ds.Add(ctx, sub); err != nil {
		return nil, false, err
	}
	out, err := e.set(ctx, dir, name, sub)
	return out, false, err
}

// apply makes changes to the tree at root and returns the new root.
func (e *treeEdit) apply(ctx context.Context, root cid.Cid, changes []treeChange) (cid.Cid, error) {
	top := e.dirNode(root)
	if top == nil {
		return cid.Undef, fmt.Errorf("s3api: tree root %s not held", root)
	}
	for _, ch := range changes {
		segs := strings.Split(strings.TrimSuffix(ch.key, "/"), "/")
		var err error
		if ch.obj != nil {
			top, err = e.put(ctx, top, ch.key, segs, ch.obj)
		} else {
			top, _, err = e.del(ctx, top, "", ch.key, segs)
		}
		if err != nil {
			return cid.Undef, err
		}
	}
	if err := e.ds.Add(ctx, top); err != nil {
		return cid.Undef, err
	}
	return top.Cid(), nil
}

// treeCache keeps, per bucket, the directory blocks of the last root
// this gateway made or built. Blocks are only added to a tree's memDAG
// (a record queued for placement may still walk an older root in it);
// once it holds many more blocks than its root reaches, the next change
// starts a new one with only those (compact).
type treeCache struct {
	mu sync.Mutex
	m  map[string]*treeState
}

type treeState struct {
	root  string
	ds    *memDAG
	built int // blocks when the memDAG was started
}

// maxCachedTrees bounds the cache; past it, it starts over.
const maxCachedTrees = 256

func (c *treeCache) get(bucket string) *treeState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[bucket]
}

func (c *treeCache) put(bucket string, ts *treeState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedTrees {
		c.m = map[string]*treeState{}
	}
	c.m[bucket] = ts
}

func (c *treeCache) forget(bucket string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, bucket)
}

// compact returns a memDAG with only the blocks reachable from root.
func (d *memDAG) compact(root cid.Cid) *memDAG {
	out := &memDAG{nodes: map[string]ipld.Node{}}
	stack := []cid.Cid{root}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if _, ok := out.nodes[c.KeyString()]; ok {
			continue
		}
		nd, err := d.Get(context.Background(), c)
		if err != nil {
			continue // a file: not held
		}
		out.nodes[c.KeyString()] = nd
		for _, l := range nd.Links() {
			stack = append(stack, l.Cid)
		}
	}
	return out
}

// maxTreeEdits is the number of keys a change edits the tree for, one
// after the other; past it (a DeleteObjects of many keys, a fill), the
// tree is built whole.
const maxTreeEdits = 256

// nextRoot returns the root of rec's tree after tx's changes, and the
// memDAG holding its directory blocks. cur is the record before them.
func (s *Server) nextRoot(ctx context.Context, cur *bucketRecord, tx *indexTxn) (*treeState, error) {
	ts := s.trees.get(cur.Name)
	if ts == nil || ts.root != cur.Root || len(tx.changes) > maxTreeEdits {
		objs, err := s.shards.view(cur).all(ctx)
		if err != nil {
			return nil, err
		}
		changes := tx.changes
		if len(changes) > maxTreeEdits { // cheaper built whole
			for _, ch := range changes {
				if ch.obj != nil {
					objs[ch.key] = ch.obj
				} else {
					delete(objs, ch.key)
				}
			}
			changes = nil
		}
		root, ds, err := bucketDAG(objs)
		if err != nil {
			return nil, err
		}
		ts = &treeState{root: root.String(), ds: ds, built: ds.len()}
		if changes == nil {
			return ts, nil
		}
	}
	root, err := cid.Parse(ts.root)
	if err != nil {
		return nil, err
	}
	e := &treeEdit{ds: ts.ds, has: func(key string) (bool, error) {
		o, err := tx.get(ctx, key)
		return o != nil, err
	}}
	next, err := e.apply(ctx, root, tx.changes)
	if err != nil {
		return nil, err
	}
	out := &treeState{root: next.String(), ds: ts.ds, built: ts.built}
	if n := ts.ds.len(); n > 2*ts.built+1024 {
		out.ds = ts.ds.compact(next)
		out.built = out.ds.len()
	}
	return out, nil
}
