package node

import (
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"

	"github.com/verity-cdn/verity/internal/keyfile"
)

const identityFile = "identity.key"

// loadOrCreateIdentity reads the node key from dir/identity.key, creating it
// on first start.
func loadOrCreateIdentity(dir string) (ed25519.PrivateKey, error) {
	priv, err := keyfile.LoadOrCreate(filepath.Join(dir, identityFile))
	if err != nil {
		return nil, fmt.Errorf("node: identity: %w", err)
	}
	return priv, nil
}

// writeFileAtomic writes data to path so that a crash leaves the old or the
// new contents.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return keyfile.WriteAtomic(path, data, perm)
}
