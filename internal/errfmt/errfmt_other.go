//go:build !js

package errfmt

import "fmt"

// Outside the worker these forward to fmt, which prints the same text for
// every call the worker's code makes (TestMatchesFmt). Forwarding makes go
// vet's printf check treat them as the printf wrappers they are, so a call
// with the wrong operands fails `make vet` in every package that uses them.

// Errorf formats like fmt.Errorf: the error's text is Sprintf's, and its %w
// operands are wrapped.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// Wrapf is Errorf("%w: "+format, err, args...).
func Wrapf(err error, format string, args ...any) error {
	return &wrapError{msg: err.Error() + ": " + fmt.Sprintf(format, args...), err: err}
}

// Sprintf formats like fmt.Sprintf.
func Sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// Sprint formats its operands like fmt.Sprint.
func Sprint(args ...any) string { return fmt.Sprint(args...) }
