package errfmt

// This package's own formatting, whichever the build: native builds forward
// the exported functions to fmt, so the tests compare these with fmt.

func OwnErrorf(format string, args ...any) error           { return errorf(format, args) }
func OwnWrapf(err error, format string, args ...any) error { return wrapf(err, format, args) }
func OwnSprintf(format string, args ...any) string         { return sprintf(format, args) }
func OwnSprint(args ...any) string                         { return sprint(args) }
