//go:build !linux

package main

import "errors"

// syncAll is a no-op off Linux.
func syncAll() {}

// syncFS is not measured off Linux.
func syncFS(string) error { return errors.New("syncfs is Linux only") }
