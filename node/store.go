package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipfs/boxo/blockstore"
	dshelp "github.com/ipfs/boxo/datastore/dshelp"
	"github.com/ipfs/boxo/ipld/merkledag"
	blocks "github.com/ipfs/go-block-format"
	"github.com/ipfs/go-cid"
	flatfs "github.com/ipfs/go-ds-flatfs"
	car "github.com/ipld/go-car/v2"
	"github.com/multiformats/go-multihash"

	"github.com/verity-cdn/verity/internal/bao"
	"github.com/verity-cdn/verity/internal/carcheck"
	vcid "github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/lru"
)

const (
	blocksDir = "blocks"
	tmpDir    = "tmp"
)

var shardFunc = flatfs.NextToLast(2)

// openStore opens (creating if needed) the flatfs datastore under
// dir/blocks, and the blockstore over it. flatfs does not fsync each file
// it writes: whoever writes blocks syncs the store once after (syncStore)
// before anything relies on them.
//
// Every block read is checked against its CID before it is served: a block
// damaged on disk is refused (ErrCorruptBlock), counted and logged, never
// sent. onCorrupt is called for each such block.
func openStore(dir string, onCorrupt func(cid.Cid)) (*flatfs.Datastore, blockstore.Blockstore, *checkedBlockstore, error) {
	return openStoreCache(dir, onCorrupt, smallBlocksBytes)
}

// openStoreCache is openStore with a small-block cache of max bytes.
func openStoreCache(dir string, onCorrupt func(cid.Cid), max int) (*flatfs.Datastore, blockstore.Blockstore, *checkedBlockstore, error) {
	ds, err := flatfs.CreateOrOpen(filepath.Join(dir, blocksDir), shardFunc, false)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("node: open blockstore: %w", err)
	}
	checked := &checkedBlockstore{
		Blockstore: blockstore.NewBlockstore(ds, blockstore.NoPrefix()),
		onCorrupt:  onCorrupt,
		cache:      newBlockCache(max),
	}
	return ds, blockstore.NewIdStore(checked), checked, nil
}

// checkedBlockstore verifies each block it reads against its CID. A read
// for a bao16 response (its context carries outboards) keeps the outboard
// of each raw BLAKE3 block it checks, computed by the check, for the
// response's encoder.
//
// Small dag-pb blocks it has checked (directories and the nodes of
// files: every request for a path under a site's root reads the root's
// directory and the ones on the way again) are kept in memory, bounded
// (newBlockCache), and served from there: no file read and no hash for
// them. Their bytes were checked against the CID when read; a block is
// dropped from memory when it is deleted (DeleteBlock, or forget for a
// removal that bypasses the blockstore).
type checkedBlockstore struct {
	blockstore.Blockstore
	onCorrupt func(cid.Cid)
	cache     *lru.Cache[string, []byte] // small dag-pb blocks by multihash
}

var _ blockstore.Blockstore = (*checkedBlockstore)(nil)

func (b *checkedBlockstore) Get(ctx context.Context, c cid.Cid) (blocks.Block, error) {
	keep := c.Prefix().Codec == cid.DagProtobuf
	if keep && ctx.Value(diskReadKey{}) == nil {
		if data, ok := b.cache.Get(string(c.Hash())); ok {
			return blocks.NewBlockWithCid(data, c)
		}
	}
	blk, err := b.Blockstore.Get(ctx, c)
	if err != nil {
		return nil, err
	}
	ok, err := checkStored(ctx, c, blk.RawData())
	if err != nil {
		return nil, fmt.Errorf("node: check block %s: %w", c, err)
	}
	if !ok {
		if b.onCorrupt != nil {
			b.onCorrupt(c)
		}
		return nil, &CorruptBlockError{CID: c}
	}
	if keep && len(blk.RawData()) <= smallBlockMax {
		b.cache.Put(string(c.Hash()), blk.RawData())
	}
	return blk, nil
}

// diskReadKey marks a context whose reads must come from the disk: the
// check of a pinned root (walkOpts.check), which looks for damaged block
// files.
type diskReadKey struct{}

// fromDisk returns ctx with its block reads made from the disk.
func fromDisk(ctx context.Context) context.Context {
	return context.WithValue(ctx, diskReadKey{}, true)
}

// DeleteBlock deletes c from memory, then from the store.
func (b *checkedBlockstore) DeleteBlock(ctx context.Context, c cid.Cid) error {
	b.cache.Remove(string(c.Hash()))
	return b.Blockstore.DeleteBlock(ctx, c)
}

// forget drops the block mh from memory: its file is being removed
// without the blockstore.
func (b *checkedBlockstore) forget(mh multihash.Multihash) {
	if b != nil {
		b.cache.Remove(string(mh))
	}
}

// smallBlockMax is the largest block the cache keeps, and
// smallBlocksBytes the bytes it keeps in all.
const (
	smallBlockMax    = 16 << 10
	smallBlocksBytes = 8 << 20
)

// newBlockCache returns the cache of block bytes by multihash, at most
// max bytes in all.
func newBlockCache(max int) *lru.Cache[string, []byte] {
	return lru.New[string](int64(max), func(b []byte) int64 { return int64(len(b)) })
}

// checkStored reports whether data, read from the store, hashes to c.
// For a raw BLAKE3 block read for a response with outboards, the hash is
// computed with the block's outboard encoding (bao.AppendOutboard), kept
// if it matches.
func checkStored(ctx context.Context, c cid.Cid, data []byte) (bool, error) {
	if o := outboardsFrom(ctx); o != nil {
		if pref := c.Prefix(); pref.Codec == cid.Raw && pref.MhType == multihash.BLAKE3 && pref.MhLength == 32 {
			mh := c.Hash()
			digest := mh[len(mh)-32:]
			ob, root := bao.AppendOutboard(nil, data)
			if string(root[:]) != string(digest) {
				return false, nil
			}
			o.put(digest, ob)
			return true, nil
		}
	}
	sum, err := c.Prefix().Sum(data)
	if err != nil {
		return false, err
	}
	return sum.Equals(c), nil
}

// clearTmp removes what imports left in DataDir/tmp: the markers of
// import runs a killed node never finished (import_run.go), the marker
// of block files whose bytes the disk-usage figure flatfs saved lacks
// (blockfile.go), and CARs staged by older versions. Only imports write
// there, and none runs yet. With anything left, flatfs's saved disk
// usage is removed, so flatfs counts the store again. It reports whether
// an import was left unfinished, in which case blocks of a refused or
// unfinished import may be stored, unpinned: New then collects garbage
// (collectLeftovers).
func (n *Node) clearTmp() (bool, error) {
	dir := filepath.Join(n.cfg.DataDir, tmpDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("node: data dir: %w", err)
	}
	runs := 0
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return false, fmt.Errorf("node: clear %s: %w", dir, err)
		}
		if e.Name() != usageMarker {
			runs++
		}
	}
	if len(ents) == 0 {
		return false, nil
	}
	if runs > 0 {
		n.log.Info("imports were left unfinished by the last run; collecting garbage", "runs", runs)
	} else {
		n.log.Info("the last run stopped before saving the store's disk usage; flatfs counts it again")
	}
	// flatfs saves its disk usage at most every few seconds: after a
	// kill the saved figure may miss blocks the import wrote, and the
	// collection would subtract them. Without it flatfs counts the store
	// again when it opens, so --max-storage sees what is on disk.
	if err := os.Remove(filepath.Join(n.cfg.DataDir, blocksDir, flatfs.DiskUsageFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("node: clear disk usage: %w", err)
	}
	return runs > 0, nil
}

// collectLeftovers collects garbage on a goroutine owned by n.wg, after
// the block count: the blocks imports left unfinished by the last run
// wrote, which no pin reaches.
func (n *Node) collectLeftovers() {
	// Taken here, not on the goroutine: an import begun after New
	// returns (verity node --car) waits for this collection, which would
	// otherwise delete the blocks it found stored and took.
	n.gcMu.Lock()
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.gcMu.Unlock()
		if _, err := n.collect(n.ctx); err != nil && n.ctx.Err() == nil {
			n.log.Error("collecting what unfinished imports left failed", "err", err)
		}
	}()
}

// BlockPath returns the path of the file holding block c. The file may not
// exist.
func (n *Node) BlockPath(c cid.Cid) (string, error) {
	if !c.Defined() {
		return "", errors.New("node: undefined CID")
	}
	_, path := n.blockFile(c.Hash())
	return path, nil
}

// blockFile returns the shard directory and the path of the file of the
// block mh.
func (n *Node) blockFile(mh multihash.Multihash) (dir, path string) {
	key := dshelp.MultihashToDsKey(mh).String()[1:]
	dir = filepath.Join(n.cfg.DataDir, blocksDir, shardFunc.Func()(key))
	return dir, filepath.Join(dir, key+".data")
}

// Has reports whether the block c is stored.
func (n *Node) Has(ctx context.Context, c cid.Cid) (bool, error) {
	return n.bs.Has(ctx, c)
}

// ImportCAR reads a CAR (v1 or v2) from r, verifies every block against its
// CID and stores the blocks. It is all or nothing with respect to content:
// if any block is malformed, too large or does not match its CID, the
// blocks it stored are removed again and the error wraps ErrBadCAR. It
// returns the CAR's roots.
//
// Blocks are stored as they stream in, so memory use does not grow with
// the CAR's size.
func (n *Node) ImportCAR(ctx context.Context, r io.Reader) ([]cid.Cid, error) {
	// Collection waits for the import: its blocks are not pinned yet.
	n.gcMu.RLock()
	defer n.gcMu.RUnlock()
	run := n.newImportRun()
	defer run.release()
	roots, err := n.importCAR(ctx, run, r, cid.Undef, cid.Undef)
	if err != nil {
		return nil, err
	}
	// A CAR cut at a section boundary parses whole: each root's DAG
	// must be stored in full, else the CAR is refused like a bad one.
	for _, root := range roots {
		missing, err := n.missing(ctx, root, walkOpts{run: run, intoPinned: true, uncached: true})
		if err == nil && len(missing) > 0 {
			err = fmt.Errorf("%w: the DAG of root %s lacks %d blocks, %s first", ErrBadCAR, root, len(missing), missing[0])
		}
		if err != nil {
			removed, uerr := run.undo(ctx)
			n.metrics.addBlocks(-removed)
			if uerr != nil {
				n.log.Error("removing the blocks of a refused import failed; the next start collects them", "err", uerr)
			}
			return nil, err
		}
	}
	return roots, nil
}

// importCAR is ImportCAR as run; with dag defined the CAR comes from a
// source trusted for nothing (another node) and must be dag's traversal:
// its only root is dag, and every block is dag or a block linked (as
// often as linked) from one before it, so an endless or stuffed CAR is
// cut off early, before it can fill the disk. With whole defined, the CAR
// must be exactly whole's complete DAG, checked by the checker the
// gateway applies to deploys (internal/carcheck: one root, every block
// once, nothing missing, nothing extra) as it streams in.
//
// The CAR is read once. Each block is verified as it arrives, then stored
// at once (in batches, without an fsync per file); the whole-DAG rules
// are decided at the end. A CAR refused at any point, or an import
// cancelled, undoes the run (import_run.go): the blocks it wrote that no
// other import or pin needs are deleted. An accepted CAR is made durable
// by one sync of the store (syncStore) before importCAR returns, so a pin
// recorded after it never names a block that is not on disk
// (docs/operating-a-node.md, "Pinning and durability").
func (n *Node) importCAR(ctx context.Context, run *importRun, r io.Reader, dag, whole cid.Cid) (roots []cid.Cid, err error) {
	if n.closed.Load() {
		return nil, ErrClosed
	}
	n.countMu.RLock() // after the background count (blockcount.go)
	defer n.countMu.RUnlock()
	sd, err := n.openStoreSync() // before any write: see openStoreSync
	if err != nil {
		return nil, fmt.Errorf("node: import: %w", err)
	}
	defer sd.Close()
	w := &blockWriter{n: n, run: run}
	defer func() {
		if err == nil {
			return
		}
		w.discard()
		removed, uerr := run.undo(ctx)
		n.unsynced.gone(w.queuedPaths)
		n.metrics.addBlocks(-removed)
		if uerr != nil {
			n.log.Error("removing the blocks of a refused import failed; the next start collects them", "err", uerr)
		}
	}()

	// Sections are read with NextReader, into the writer's reused
	// buffers (blockBuffers), and hashed here: by the checker when whole
	// is defined (BLAKE3 or sha2-256 only), else against the CID's
	// prefix.
	br, err := car.NewBlockReader(r, car.MaxAllowedSectionSize(uint64(n.cfg.MaxBlockSize)+128))
	if err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrBadCAR, err)
	}
	roots = br.Roots
	var owed map[string]int // dag's blocks still expected, by multihash
	if dag.Defined() {
		if len(roots) != 1 || !roots[0].Equals(dag) {
			return nil, fmt.Errorf("%w: the CAR's roots are %v", ErrBadCAR, roots)
		}
		owed = map[string]int{string(dag.Hash()): 1}
	}
	var chk *carcheck.Checker
	if whole.Defined() {
		if chk, err = newChecker(roots, n.cfg.MaxBlockSize); err != nil {
			return nil, err
		}
	}
	count := 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c, sr, size, err := br.NextReader()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: block %d: %v", ErrBadCAR, count, err)
		}
		if size > uint64(n.cfg.MaxBlockSize) {
			return nil, fmt.Errorf("%w: block %s is larger than %d bytes", ErrBadCAR, c, n.cfg.MaxBlockSize)
		}
		data := w.bufs.get(int(size))
		if _, err := io.ReadFull(sr, data); err != nil {
			w.bufs.put(data)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: block %d (%s): %v", ErrBadCAR, count, c, err)
		}
		blk, err := blocks.NewBlockWithCid(data, c)
		if err == nil && chk == nil {
			err = verifyBlock(blk)
		}
		if err == nil && owed != nil {
			err = takeOwed(owed, blk)
		}
		if err == nil && chk != nil {
			err = checkBlock(chk, blk)
		}
		if err == nil {
			err = w.put(ctx, blk) // the buffer is the writer's now
		} else {
			w.bufs.put(data)
		}
		if err != nil {
			return nil, err
		}
		count++
	}
	if err := w.flush(ctx); err != nil {
		return nil, err
	}
	if chk != nil {
		res, err := chk.Finish()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadCAR, err)
		}
		if !bytes.Equal(res.Root.Bytes(), whole.Bytes()) {
			return nil, fmt.Errorf("%w: the CAR's root is %s, not %s", ErrBadCAR, res.Root, whole)
		}
	}
	if n.beforeSync != nil {
		n.beforeSync(w.paths)
	}
	if err := n.syncStore(sd, w.paths); err != nil {
		return nil, fmt.Errorf("node: import: sync the store: %w", err)
	}
	n.unsynced.synced(w.paths)
	n.log.Info("imported CAR", "roots", roots, "blocks", count, "new", len(run.fresh))
	return roots, nil
}

// blockWriter stores the blocks of an import run that the store does not
// hold, in batches, without syncing them (syncStore does, once; on Linux
// most of each file is written with O_DIRECT, straight to the disk, and
// the disk starts writing the rest as soon as it is written: writeTemp).
// A block is held when its file exists with the block's size: one stat,
// no read; a file of another size (a write a power loss cut short) is
// replaced. The files are written by blockFiles (blockfile.go), each
// named only once it holds all its bytes.
//
// A full batch is written on a goroutine while the next ones fill, so
// reading and hashing the CAR overlap with the writes, the two cores of
// a small machine both write, and several O_DIRECT writes (each waiting
// for the disk) are in flight; at most batchWriters batches are being
// written at a time. wait (done by flush and discard) returns once they
// are written.
type blockWriter struct {
	n       *Node
	run     *importRun
	batch   []queuedBlock
	queued  int            // bytes in batch
	slots   chan int       // the writers (tempDir) not writing a batch
	writing sync.WaitGroup // the batches being written

	queuedPaths []string // files queued for writing (noted in n.unsynced)

	bufs blockBuffers // the blocks' bytes, given back once written

	mu    sync.Mutex
	paths []string // files written (or found written by another import and not synced)
	err   error    // the first batch's write that failed
}

// unsyncedFiles are the block files imports queued for writing and have
// not synced yet. An import that finds a block's file already there takes
// it without writing it, and syncs it with its own files if it is one of
// these: the import that wrote it may not have synced yet, and a pin is
// acknowledged only once every file of its blocks is on disk.
type unsyncedFiles struct {
	mu sync.Mutex
	m  map[string]struct{}
}

func (u *unsyncedFiles) add(path string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m == nil {
		u.m = map[string]struct{}{}
	}
	u.m[path] = struct{}{}
}

func (u *unsyncedFiles) has(path string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.m[path]
	return ok
}

// synced forgets paths, now on disk.
func (u *unsyncedFiles) synced(paths []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range paths {
		delete(u.m, p)
	}
}

// gone forgets the paths of a refused import that are no longer there;
// those another import needed stay, until an import that takes them syncs
// them.
func (u *unsyncedFiles) gone(paths []string) {
	var left []string
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			left = append(left, p)
		}
	}
	u.synced(left)
}

// queuedBlock is a block waiting in a batch.
type queuedBlock struct {
	dir, path string
	data      []byte
	replace   bool // a file of another size is there
}

// batchBytes is how much a blockWriter queues before it writes, and
// batchWriters how many batches it writes at a time: four rather than
// two since the bulk of each block is written with O_DIRECT, a write
// that waits for the disk (docs/operating-a-node.md, "Rate.").
var (
	batchBytes   = 4 << 20
	batchWriters = 4
)

// put stores blk unless it is held.
func (w *blockWriter) put(ctx context.Context, blk blocks.Block) error {
	c := blk.Cid()
	if c.Prefix().MhType == multihash.IDENTITY {
		w.bufs.put(blk.RawData())
		return nil // the store holds identity CIDs implicitly
	}
	mh := c.Hash()
	w.run.claim(mh)
	dir, path := w.n.blockFile(mh)
	data := blk.RawData()
	replace := false
	if fi, err := os.Stat(path); err == nil {
		if fi.Size() == int64(len(data)) {
			w.bufs.put(data)
			if w.n.unsynced.has(path) { // written by an import that has not synced
				w.mu.Lock()
				w.paths = append(w.paths, path)
				w.mu.Unlock()
			}
			return nil
		}
		replace = true
	} else if !errors.Is(err, fs.ErrNotExist) {
		w.bufs.put(data)
		return fmt.Errorf("node: import: store: %w", err)
	}
	if err := w.run.wrote(mh); err != nil {
		w.bufs.put(data)
		return err
	}
	w.n.unsynced.add(path) // before its name appears: an import finding it syncs it
	w.queuedPaths = append(w.queuedPaths, path)
	w.batch = append(w.batch, queuedBlock{dir: dir, path: path, data: data, replace: replace})
	if w.queued += len(data); w.queued >= batchBytes {
		return w.start(ctx)
	}
	return nil
}

// start hands the queued blocks to a goroutine that writes them, once
// fewer than batchWriters batches are being written.
func (w *blockWriter) start(ctx context.Context) error {
	if err := w.failed(); err != nil {
		return err
	}
	if len(w.batch) == 0 {
		return nil
	}
	if w.slots == nil {
		w.slots = make(chan int, batchWriters)
		for i := range batchWriters {
			w.slots <- i
		}
	}
	var writer int
	select {
	case writer = <-w.slots:
	case <-ctx.Done():
		return ctx.Err()
	}
	batch := w.batch
	w.batch, w.queued = nil, 0
	w.writing.Add(1)
	go func() {
		defer w.writing.Done()
		defer func() { w.slots <- writer }()
		done, added := 0, 0
		for _, q := range batch {
			wrote, err := w.n.files.write(writer, q.dir, q.path, q.data, q.replace)
			if err != nil {
				w.fail(fmt.Errorf("node: import: store: %w", err))
				break
			}
			if wrote && !q.replace {
				added++
			}
			done++
		}
		for _, q := range batch {
			w.bufs.put(q.data)
		}
		w.mu.Lock()
		for _, q := range batch[:done] {
			w.paths = append(w.paths, q.path) // synced even if another import wrote it
		}
		w.mu.Unlock()
		w.n.metrics.addBlocks(added)
	}()
	return nil
}

// fail records the first error of a batch's write.
func (w *blockWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

// failed returns the first error of a batch's write, if any.
func (w *blockWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// wait returns once every batch being written is written.
func (w *blockWriter) wait() error {
	w.writing.Wait()
	return w.failed()
}

// flush writes the queued blocks and waits until every batch is written.
func (w *blockWriter) flush(ctx context.Context) error {
	if err := w.start(ctx); err != nil {
		return err
	}
	return w.wait()
}

// discard waits for the batches being written and drops the queued
// blocks, not written, from the batch and from the run's.
func (w *blockWriter) discard() {
	_ = w.wait()
	w.run.fresh = w.run.fresh[:len(w.run.fresh)-len(w.batch)]
	for _, q := range w.batch {
		w.bufs.put(q.data)
	}
	w.batch, w.queued = nil, 0
}

// verifyBlock checks blk's bytes against its CID.
func verifyBlock(blk blocks.Block) error {
	c := blk.Cid()
	sum, err := c.Prefix().Sum(blk.RawData())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCAR, c, err)
	}
	if !sum.Equals(c) {
		return fmt.Errorf("%w: mismatch in content integrity, expected: %s, got: %s", ErrBadCAR, c, sum)
	}
	return nil
}

// blockBuffers are the buffers an import reads its blocks into, reused
// once a block is written (or not needed): a pin of hundreds of MB then
// reads into the same few MB of memory, which stays mapped and warm,
// rather than into fresh memory for the collector to reclaim. Blocks of
// up to blockBufferSize bytes get one; larger ones their own. Every
// buffer starts at a multiple of directAlign in memory, so a block file
// can be written from it with O_DIRECT (writeTemp).
type blockBuffers struct {
	mu   sync.Mutex
	free [][]byte
}

// blockBufferSize is the size of the buffers kept (a 256 KiB chunk),
// and maxFreeBuffers how many are kept: more than the batches being
// written and the one filling hold (batchWriters+1 batches of 4 MiB, 80
// buffers).
const (
	blockBufferSize = 256 << 10
	maxFreeBuffers  = 96
)

// get returns a buffer of n bytes.
func (b *blockBuffers) get(n int) []byte {
	if n > blockBufferSize {
		return alignedBuffer(n)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if k := len(b.free); k > 0 {
		buf := b.free[k-1]
		b.free = b.free[:k-1]
		return buf[:n]
	}
	return alignedBuffer(blockBufferSize)[:n]
}

// put gives back a buffer get returned; nothing may use it after.
func (b *blockBuffers) put(buf []byte) {
	if cap(buf) != blockBufferSize {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.free) < maxFreeBuffers {
		b.free = append(b.free, buf[:0])
	}
}

// newChecker starts a carcheck.Checker on a CAR with these roots.
func newChecker(roots []cid.Cid, maxBlock int) (*carcheck.Checker, error) {
	cr := make([]vcid.CID, len(roots))
	for i, r := range roots {
		c, _, err := vcid.Decode(r.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%w: root %s: %v", ErrBadCAR, r, err)
		}
		cr[i] = c
	}
	chk, err := carcheck.NewChecker(cr, carcheck.Config{MaxBlockSize: maxBlock})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCAR, err)
	}
	return chk, nil
}

// checkBlock adds blk to chk.
func checkBlock(chk *carcheck.Checker, blk blocks.Block) error {
	c, _, err := vcid.Decode(blk.Cid().Bytes())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCAR, blk.Cid(), err)
	}
	if err := chk.Add(c, blk.RawData()); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCAR, err)
	}
	return nil
}

// takeOwed accounts for blk in the traversal of an untrusted CAR: blk must
// be owed (the root, or linked from a block before it); its links are owed
// in turn.
func takeOwed(owed map[string]int, blk blocks.Block) error {
	k := string(blk.Cid().Hash())
	if owed[k] == 0 {
		return fmt.Errorf("%w: block %s is not linked from the root (or was sent more often than linked)", ErrBadCAR, blk.Cid())
	}
	if owed[k]--; owed[k] == 0 {
		delete(owed, k)
	}
	if blk.Cid().Prefix().Codec != cid.DagProtobuf {
		return nil
	}
	nd, err := merkledag.DecodeProtobuf(blk.RawData())
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadCAR, blk.Cid(), err)
	}
	for _, l := range nd.Links() {
		owed[string(l.Cid.Hash())]++
	}
	return nil
}
