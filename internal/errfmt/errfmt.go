package errfmt

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// errorf formats like fmt.Errorf: the error's text is sprintf's, and its
// %w operands are wrapped.
func errorf(format string, args []any) error {
	p := printer{wrap: true}
	p.doPrintf(format, args)
	s := string(p.buf)
	switch len(p.wrapped) {
	case 0:
		return errors.New(s)
	case 1:
		w := &wrapError{msg: s}
		w.err, _ = args[p.wrapped[0]].(error)
		return w
	}
	errs := make([]error, 0, len(p.wrapped))
	for i, n := range p.wrapped {
		if i > 0 && n == p.wrapped[i-1] {
			continue
		}
		if e, ok := args[n].(error); ok {
			errs = append(errs, e)
		}
	}
	return &wrapErrors{msg: s, errs: errs}
}

// wrapf is errorf("%w: "+format, err, args...), without building a new
// operand list.
func wrapf(err error, format string, args []any) error {
	p := printer{buf: []byte(err.Error() + ": ")}
	p.doPrintf(format, args)
	return &wrapError{msg: string(p.buf), err: err}
}

// sprintf formats like fmt.Sprintf for the verbs and types of the package
// doc.
func sprintf(format string, args []any) string {
	var p printer
	p.doPrintf(format, args)
	return string(p.buf)
}

// sprint formats its operands like fmt.Sprint: %v each, with a space
// between two operands when neither is a string.
func sprint(args []any) string {
	var p printer
	prevString := false
	for i, a := range args {
		_, isString := a.(string)
		if i > 0 && !isString && !prevString {
			p.buf = append(p.buf, ' ')
		}
		p.printArg(a, 'v', spec{})
		prevString = isString
	}
	return string(p.buf)
}

type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

type wrapErrors struct {
	msg  string
	errs []error
}

func (e *wrapErrors) Error() string   { return e.msg }
func (e *wrapErrors) Unwrap() []error { return e.errs }

type stringer interface{ String() string }

// spec is one verb's flags and width.
type spec struct {
	zero, minus bool
	width       int
}

type printer struct {
	buf     []byte
	wrap    bool  // Errorf: %w allowed
	wrapped []int // indexes of the %w operands
}

func (p *printer) doPrintf(format string, args []any) {
	argNum := 0
	for i := 0; i < len(format); {
		c := format[i]
		i++
		if c != '%' {
			p.buf = append(p.buf, c)
			continue
		}
		var f spec
	flags:
		for ; i < len(format); i++ {
			switch format[i] {
			case '0':
				f.zero = true
			case '-':
				f.minus = true
			default:
				break flags
			}
		}
		if i < len(format) && format[i] == '*' {
			i++
			n, ok := int64(0), false
			if argNum < len(args) {
				n, ok = toInt(args[argNum])
				argNum++
			}
			switch {
			case !ok || n < -1e6 || n > 1e6:
				p.buf = append(p.buf, "%!(BADWIDTH)"...)
			case n < 0: // fmt: a negative width left-justifies
				f.width, f.minus = int(-n), true
			default:
				f.width = int(n)
			}
		} else {
			for ; i < len(format) && '0' <= format[i] && format[i] <= '9'; i++ {
				if f.width < 1e6 {
					f.width = f.width*10 + int(format[i]-'0')
				}
			}
		}
		if i >= len(format) {
			p.buf = append(p.buf, "%!(NOVERB)"...)
			break
		}
		verb := format[i]
		i++
		switch {
		case verb == '%':
			p.buf = append(p.buf, '%')
			continue
		case argNum >= len(args):
			p.buf = append(p.buf, '%', '!', verb)
			p.buf = append(p.buf, "(MISSING)"...)
			continue
		case verb == 'w' && p.wrap:
			// fmt: Errorf wraps every %w operand that is an error, and
			// prints the others as a bad verb.
			p.wrapped = append(p.wrapped, argNum)
			if _, ok := args[argNum].(error); ok {
				verb = 'v'
			}
		}
		p.printArg(args[argNum], verb, f)
		argNum++
	}
	if argNum < len(args) {
		p.buf = append(p.buf, "%!(EXTRA)"...)
	}
}

// printArg prints one operand, padded to the width as fmt pads: zeros go
// after a number's sign, and '-' pads on the right with spaces.
func (p *printer) printArg(a any, verb byte, f spec) {
	s, num, ok := text(a, verb)
	if !ok {
		p.buf = append(p.buf, '%', '!', verb)
		if a == nil {
			p.buf = append(p.buf, "(<nil>)"...)
		} else {
			p.buf = append(p.buf, "(BADTYPE)"...)
		}
		return
	}
	n := f.width - utf8.RuneCountInString(s)
	if f.minus {
		p.buf = append(p.buf, s...)
	} else if f.zero && num && n > 0 && s[0] == '-' {
		p.buf = append(p.buf, '-')
		s = s[1:]
	}
	for ; n > 0; n-- {
		if f.zero && !f.minus {
			p.buf = append(p.buf, '0')
		} else {
			p.buf = append(p.buf, ' ')
		}
	}
	if !f.minus {
		p.buf = append(p.buf, s...)
	}
}

// text returns an operand's unpadded text for verb and whether it is a
// number (zero-padded after its sign); ok is false outside the package's
// verbs and types.
func text(a any, verb byte) (s string, num, ok bool) {
	// fmt: the methods win for the string verbs, and for %x, %X and %q
	// their result is formatted as a string.
	if verb != 'd' {
		if s, ok := methodString(a); ok {
			return stringText(s, verb)
		}
	}
	switch v := a.(type) {
	case nil:
		return "<nil>", false, verb == 'v'
	case string:
		return stringText(v, verb)
	case []byte:
		if verb == 'v' {
			return "", false, false
		}
		return stringText(string(v), verb)
	case bool:
		return strconv.FormatBool(v), false, verb == 'v'
	}
	u, signed, ok := intValue(a)
	if !ok {
		return "", false, false
	}
	neg := signed && int64(u) < 0
	if neg {
		u = -u
	}
	switch verb {
	case 'v', 'd':
		s = strconv.FormatUint(u, 10)
	case 'x', 'X':
		s = strconv.FormatUint(u, 16)
		if verb == 'X' {
			s = upper(s)
		}
	case 'q':
		r := utf8.RuneError // fmt: beyond utf8.MaxRune
		if !neg && u <= utf8.MaxRune {
			r = rune(u)
		}
		return strconv.QuoteRune(r), false, true
	default:
		return "", false, false
	}
	if neg {
		s = "-" + s
	}
	return s, true, true
}

func stringText(s string, verb byte) (string, bool, bool) {
	switch verb {
	case 'v', 's':
		return s, false, true
	case 'q':
		return strconv.Quote(s), false, true
	case 'x', 'X':
		const digits = "0123456789abcdef"
		b := make([]byte, 0, 2*len(s))
		for i := 0; i < len(s); i++ {
			b = append(b, digits[s[i]>>4], digits[s[i]&0xf])
		}
		if verb == 'X' {
			return upper(string(b)), false, true
		}
		return string(b), false, true
	}
	return "", false, false
}

// upper returns lower-case hex digits in upper case.
func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// methodString returns the Error or String method's result, as fmt's
// handleMethods does (a panic in a nil receiver prints "<nil>").
func methodString(a any) (s string, ok bool) {
	e, isErr := a.(error)
	st, isStringer := a.(stringer)
	if !isErr && !isStringer {
		return "", false
	}
	defer func() {
		if recover() != nil {
			s, ok = "<nil>", true
		}
	}()
	if isErr {
		return e.Error(), true
	}
	return st.String(), true
}

// toInt returns a '*' width operand, which fmt takes from any integer type.
func toInt(a any) (int64, bool) {
	n, signed, ok := intValue(a)
	if !ok || (!signed && n > 1<<62) {
		return 0, false
	}
	return int64(n), true
}

// intValue returns an integer operand's bits and whether its type is
// signed. Named integer types are not seen (fmt needs reflection for them);
// callers convert them.
func intValue(a any) (n uint64, signed, ok bool) {
	switch v := a.(type) {
	case int:
		return uint64(v), true, true
	case int8:
		return uint64(v), true, true
	case int16:
		return uint64(v), true, true
	case int32:
		return uint64(v), true, true
	case int64:
		return uint64(v), true, true
	case uint:
		return uint64(v), false, true
	case uint8:
		return uint64(v), false, true
	case uint16:
		return uint64(v), false, true
	case uint32:
		return uint64(v), false, true
	case uint64:
		return v, false, true
	case uintptr:
		return uint64(v), false, true
	}
	return 0, false, false
}
