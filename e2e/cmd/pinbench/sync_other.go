//go:build !linux

package main

// syncAll is a no-op off Linux.
func syncAll() {}
