package main

import "syscall"

// syncAll flushes every filesystem, so a timed step does not pay for
// writes made before it.
func syncAll() { syscall.Sync() }
