#!/bin/bash
# Runs its arguments (a test binary and its flags) with VERITY_EIO_DIR, a
# directory on a filesystem whose writeback fails once VERITY_EIO_FILL is
# written until its tmpfs is full: a 24 MiB tmpfs holding a sparse 256 MiB
# ext4 image (no journal) on a loop device. Run it inside unshare -m
# (node.TestPinWritebackEIORefused does).
set -e
M=$(mktemp -d /tmp/verity-eio.XXXXXX)
cleanup() {
  umount $M/fs 2>/dev/null || umount -l $M/fs 2>/dev/null || true
  umount $M/back 2>/dev/null || true
  rm -rf $M
}
trap cleanup EXIT
mkdir -p $M/back $M/fs
mount --make-rprivate /
mount -t tmpfs -o size=24m tmpfs $M/back
truncate -s 256M $M/back/img
mkfs.ext4 -q -F -O ^has_journal -E lazy_itable_init=0,lazy_journal_init=0 $M/back/img
# A loop mount detaches its device when it is unmounted, or when this
# namespace goes.
mount -o loop,errors=continue $M/back/img $M/fs
mkdir $M/fs/data
echo EIO-SETUP-OK
VERITY_EIO_DIR=$M/fs/data VERITY_EIO_FILL=$M/back/fill "$@"
