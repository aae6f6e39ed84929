package errfmt

// In the worker (GOOS=js) the formatting is this package's own, so neither
// fmt nor reflect is linked into the wasm.

// Errorf formats like fmt.Errorf: the error's text is Sprintf's, and its %w
// operands are wrapped.
//
//go:noinline
func Errorf(format string, args ...any) error { return errorf(format, args) }

// Wrapf is Errorf("%w: "+format, err, args...).
//
//go:noinline
func Wrapf(err error, format string, args ...any) error { return wrapf(err, format, args) }

// Sprintf formats like fmt.Sprintf for the verbs and types of the package
// doc.
//
//go:noinline
func Sprintf(format string, args ...any) string { return sprintf(format, args) }

// Sprint formats its operands like fmt.Sprint.
//
//go:noinline
func Sprint(args ...any) string { return sprint(args) }
