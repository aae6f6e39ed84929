// Package verify reads a trustless-gateway CAR stream and yields only bytes it
// has verified: every block's multihash against its CID, and every block
// being the one the traversal (path, then entity, then range) expects next.
package verify

import (
	"io"

	"github.com/verity-cdn/verity/internal/cid"
)

// ByteRange is an entity-bytes range; To is inclusive, -1 means to the end.
type ByteRange struct{ From, To int64 }

// Request names what a CAR response must contain.
type Request struct {
	Root  cid.CID
	Path  []string   // unescaped segments below Root
	Range *ByteRange // nil: the whole entity
}

// Kind is the kind of the entity at the end of the path.
type Kind int

const (
	KindFile Kind = iota + 1
	KindDirectory
	KindSymlink
)

// Entity describes the resolved entity.
type Entity struct {
	CID  cid.CID
	Kind Kind
	Size int64 // file size in bytes (files and raw blocks)
}

// Options tune a Reader. Zero values are sensible defaults.
type Options struct {
	MaxBlockSize int                       // default 2 MiB
	OnBlock      func(c cid.CID, size int) // called after each verified block
}

// Reader yields the verified bytes of the requested range.
type Reader struct{}

// NewReader starts verifying the CAR stream car against req.
func NewReader(car io.Reader, req Request, opts Options) *Reader { panic("TODO(content)") }

// Entity blocks until the path is resolved and the entity's root block verified.
func (r *Reader) Entity() (Entity, error) { panic("TODO(content)") }

// Read reads verified entity bytes (files only).
func (r *Reader) Read(p []byte) (int, error) { panic("TODO(content)") }

// Target returns the request target for req: "/ipfs/<root>/<escaped path>?format=car&dag-scope=entity[&entity-bytes=a:b]".
func (req Request) Target() string { panic("TODO(content)") }
