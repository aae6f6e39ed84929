package gateway

import (
	"errors"

	"github.com/verity-cdn/verity/internal/verify"
)

// isVerifyNotFound reports whether a verification error proves that the
// requested path does not exist under the root.
func isVerifyNotFound(err error) bool { return errors.Is(err, verify.ErrNotFound) }
