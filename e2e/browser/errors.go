package browser

import (
	"errors"
	"fmt"
)

var (
	// ErrNoBrowser means the Chromium binary was not found.
	ErrNoBrowser = errors.New("browser: chromium not found (install it with `make test-deps` or `apt-get install -y chromium`)")
	// ErrTimeout means a bounded wait ended before its condition held.
	ErrTimeout = errors.New("browser: timed out")
)

// TimeoutError says what a bounded wait was waiting for.
type TimeoutError struct {
	What  string
	After string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("browser: timed out after %s waiting for %s", e.After, e.What)
}

// Is reports whether target is ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// JSError is an exception thrown by a script evaluated in the page.
type JSError struct {
	Expr string
	Err  error
}

func (e *JSError) Error() string {
	expr := e.Expr
	if len(expr) > 80 {
		expr = expr[:80] + "..."
	}
	return fmt.Sprintf("browser: script %q: %v", expr, e.Err)
}

func (e *JSError) Unwrap() error { return e.Err }
