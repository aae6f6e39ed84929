package gateway

import (
	"io/fs"

	"github.com/verity-cdn/verity/serviceworker"
)

// defaultAssets are the worker files embedded in the binary.
func defaultAssets() fs.FS { return serviceworker.FS }
