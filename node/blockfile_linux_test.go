package node_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/node"
)

// dirFlags are dir's inode flags (lsattr), or an error where the
// filesystem has none.
func dirFlags(t *testing.T, dir string) (int, error) {
	t.Helper()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return unix.IoctlGetInt(int(d.Fd()), unix.FS_IOC_GETFLAGS)
}

// On a filesystem that has it (ext4), a pin marks blocks/.temp as the top
// of a directory hierarchy (chattr +T), so the batch writers' directories
// under it, where block files are made, are placed in block groups of
// their own rather than in the one crowded with the store's directories.
func TestPinSpreadsTempDirs(t *testing.T) {
	probe := t.TempDir()
	fl, err := dirFlags(t, probe)
	if err == nil {
		d, _ := os.Open(probe)
		err = unix.IoctlSetPointerInt(int(d.Fd()), unix.FS_IOC_SETFLAGS, fl|fsTopdirFL)
		d.Close()
	}
	if err != nil {
		t.Skipf("the filesystem of %s has no directory flags: %v", probe, err)
	}
	n := newNode(t, node.Config{})
	full, root := carOf(t, map[string]string{"a.bin": strings.Repeat("x", 600<<10)})
	if err := n.Pin(t.Context(), nodeproto.Pin{Root: root.String(), CAR: serveCAR(t, full)}); err != nil {
		t.Fatal(err)
	}
	fl, err = dirFlags(t, filepath.Join(n.DataDir(), "blocks", ".temp"))
	if err != nil {
		t.Fatal(err)
	}
	if fl&fsTopdirFL == 0 {
		t.Fatalf("blocks/.temp flags %#x: no FS_TOPDIR_FL", fl)
	}
}

// fsTopdirFL is FS_TOPDIR_FL (chattr +T), which x/sys/unix does not name.
const fsTopdirFL = 0x00020000
