package wasmclient

import (
	"errors"

	"github.com/verity-cdn/verity/internal/verify"
)

// isVerifiedNotFound reports whether err proves, from verified blocks, that
// the path does not exist under the root.
func isVerifiedNotFound(err error) bool {
	return errors.Is(err, verify.ErrNotFound)
}
