// Package errfmt formats error messages the way fmt does, for the verbs the
// worker's packages use, without linking fmt and reflect into the worker's
// wasm (together about 190 KB of code, 40 KB gzipped).
//
// Usage:
//
//	return errfmt.Errorf("%w: length %d exceeds limit %d", ErrTooLarge, n, max)
//	return errfmt.Wrapf(ErrMalformed, "header: %d roots", n) // the same as Errorf("%w: header: %d roots", ...)
//
// Errorf and Sprintf accept the verbs %v, %s, %d, %x, %X, %q, %w (Errorf
// only) and %%, with the '0' flag and a width given as digits or '*'.
// Arguments may be nil, error, fmt.Stringer (String() string), string,
// []byte, bool and every integer type; the output is byte-for-byte what fmt
// prints for them (TestMatchesFmt, FuzzMatchesFmt). Errorf wraps its %w
// arguments as fmt.Errorf does: one through Unwrap() error, several
// through Unwrap() []error, so errors.Is and errors.As see them.
//
// Named integer types are not recognised (fmt needs reflection for them):
// convert them to their underlying type. Anything else (a verb or an
// operand type outside this set, a missing or extra operand) prints a
// %!verb(BADTYPE)-like marker instead of fmt's reflection output; the
// worker's code never does that.
//
// Only the worker (GOOS=js) uses this package's own formatter; native builds
// forward to fmt (errfmt_other.go). That way go vet's printf check infers
// Errorf, Wrapf, Sprintf and Sprint as printf wrappers and checks every call
// compiled natively, which is every call outside _js.go files. The tests
// compare the package's own formatter with fmt in both builds.
package errfmt
