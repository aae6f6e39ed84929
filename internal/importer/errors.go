package importer

import "errors"

var (
	// ErrSymlink reports a symbolic link in the imported tree.
	ErrSymlink = errors.New("importer: symbolic links are not supported")
	// ErrSpecialFile reports a device, socket or named pipe in the tree.
	ErrSpecialFile = errors.New("importer: not a regular file or directory")
)
