package errfmt_test

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/verity-cdn/verity/internal/errfmt"
)

type str struct{ s string }

func (s str) String() string { return s.s }

type nilErr struct{ msg string }

func (e *nilErr) Error() string { return e.msg }

var (
	errA = errors.New("a: failed")
	errB = errors.New("b: failed")
)

// cases are the call patterns of the worker's packages, and the corners
// around them.
var cases = []struct {
	format string
	args   []any
}{
	{"%w: %s", []any{errA, "/a/b"}},
	{"%w: status %d", []any{errA, 503}},
	{"%w: %v", []any{errA, errB}},
	{"js: %v", []any{"boom"}},
	{"js: %v", []any{42}},
	{"%w: version %d", []any{errA, uint8(3)}},
	{"%w: root: %v", []any{errA, errB}},
	{"%w: %w", []any{errA, errB}},
	{"%w: %w", []any{errA, errA}},
	{"stream closed before the response head: %w", []any{io.ErrUnexpectedEOF}},
	{"%w (data channel reset control frame)", []any{errA}},
	{" %v=%v", []any{"node", "n1"}},
	{" %v=%v", []any{"err", errB}},
	{" %v=%v", []any{"segment", 3}},
	{"%w: base58 character %q", []any{errA, byte('0')}},
	{"%w: base58 character %q", []any{errA, byte(0xff)}},
	{"%w: base58 character %q", []any{errA, byte('\'')}},
	{"%w: multibase prefix %q", []any{errA, byte('z')}},
	{"%w: CID version %d", []any{errA, uint64(1 << 63)}},
	{"%w: %s", []any{errA, str{"bafkqaaa"}}},
	{"cid: unknown multihash function 0x%x", []any{uint64(0x1e)}},
	{"%w: identity digest of %d bytes exceeds %d", []any{errA, 200, 128}},
	{"%w: %d trailing bytes", []any{errA, -3}},
	{"%w: header: root CID: %v", []any{errA, errB}},
	{"%w: length %d exceeds limit %d", []any{errA, uint64(5), uint64(4)}},
	{"%w: %d of %d bytes of a section", []any{errA, 1, 2}},
	{"%v: block %s", []any{errA, str{"bafy"}}},
	{", got %s", []any{str{""}}},
	{"codec 0x%x", []any{uint64(0x71)}},
	{"%d bytes", []any{1 << 20}},
	{"%w: %q in %s (/%s)", []any{errA, "dir\x00\"é", str{"bafy"}, "a/b"}},
	{"%w: entity-bytes %d:%d select fewer than zero bytes of %d", []any{errA, int64(-5), int64(-1), int64(0)}},
	{"%w: HAMT hash type 0x%x", []any{errA, uint64(0x22)}},
	{"%X", []any{255}},
	{"%X", []any{7}},
	{"%0*X", []any{2, 10}},
	{"%0*X", []any{3, 1023}},
	{"%0*X", []any{1, 0}},
	{"%w: HAMT link %q in slot %s", []any{errA, "0Aname", "0A"}},
	{"%w: dag-pb: unexpected field %d (wire type %d)", []any{errA, uint64(9), 2}},
	{"%w: unixfs Type %d", []any{errA, uint64(12)}},
	{"100%% %v", []any{true}},
	{"%v %s", []any{nil, []byte("bytes")}},
	{"%v", []any{(*nilErr)(nil)}},
	{"%5d|%-5d|%05d|%-05d|%5s|%-5s|%05s", []any{-12, -12, -12, 7, "ab", "ab", "ab"}},
	{"%*d|%*d", []any{4, 1, -4, 1}},
	{"%x %X %q %x", []any{"hi\xff", []byte{0, 1}, str{"q"}, errB}},
	{"%v %v %v %v %v %v", []any{int8(-8), int16(-16), int32(-32), uint16(16), uint32(32), uintptr(7)}},
	{"%q %q %08q", []any{-1, 0x110000, 'x'}},
	{"%x %X %d", []any{int64(-255), int8(-1), uint(18446744073709551615)}},
}

func TestMatchesFmt(t *testing.T) {
	for _, c := range cases {
		if !strings.Contains(c.format, "%w") {
			want := fmt.Sprintf(c.format, c.args...)
			if got := errfmt.OwnSprintf(c.format, c.args...); got != want {
				t.Errorf("Sprintf(%q) = %q, fmt %q", c.format, got, want)
			}
		}
		if got, want := errfmt.OwnErrorf(c.format, c.args...).Error(), fmt.Errorf(c.format, c.args...).Error(); got != want {
			t.Errorf("Errorf(%q) = %q, fmt %q", c.format, got, want)
		}
	}
}

func TestWrapfMatchesFmt(t *testing.T) {
	for _, c := range cases {
		if len(c.args) == 0 || !strings.HasPrefix(c.format, "%w: ") || strings.Count(c.format, "%w") != 1 {
			continue
		}
		sentinel := c.args[0].(error)
		got := errfmt.OwnWrapf(sentinel, c.format[len("%w: "):], c.args[1:]...)
		want := fmt.Errorf(c.format, c.args...)
		if got.Error() != want.Error() {
			t.Errorf("Wrapf(%q) = %q, fmt %q", c.format, got, want)
		}
		if !errors.Is(got, sentinel) || errors.Unwrap(got) != sentinel {
			t.Errorf("Wrapf(%q) does not wrap %v", c.format, sentinel)
		}
	}
}

func TestSprintMatchesFmt(t *testing.T) {
	for _, args := range [][]any{
		{"verity: internal error: ", errA},
		{"verity: internal error: ", "index out of range"},
		{"verity: internal error: ", 3},
		{1, 2, "x", 3, nil, true},
		{},
	} {
		if got, want := errfmt.OwnSprint(args...), fmt.Sprint(args...); got != want {
			t.Errorf("Sprint(%v) = %q, fmt %q", args, got, want)
		}
	}
}

func TestErrorfWraps(t *testing.T) {
	for _, c := range []struct {
		format string
		args   []any
	}{
		{"no operand", nil},
		{"%v only printed", []any{errA}},
		{"%w: one", []any{errA}},
		{"%w: %w two", []any{errA, errB}},
		{"%w: %w same twice", []any{errA, errA}},
		{"%w: %d then %w", []any{errA, 3, errB}},
		{"%w nil", []any{error(nil)}},
	} {
		got, want := errfmt.OwnErrorf(c.format, c.args...), fmt.Errorf(c.format, c.args...)
		if got.Error() != want.Error() {
			t.Errorf("Errorf(%q) = %q, fmt %q", c.format, got, want)
		}
		for _, target := range []error{errA, errB} {
			if errors.Is(got, target) != errors.Is(want, target) {
				t.Errorf("Errorf(%q): errors.Is(%v) = %v, fmt %v", c.format, target, errors.Is(got, target), errors.Is(want, target))
			}
		}
		if (errors.Unwrap(got) == nil) != (errors.Unwrap(want) == nil) || errors.Unwrap(got) != errors.Unwrap(want) {
			t.Errorf("Errorf(%q): Unwrap = %v, fmt %v", c.format, errors.Unwrap(got), errors.Unwrap(want))
		}
		gm, gok := got.(interface{ Unwrap() []error })
		wm, wok := want.(interface{ Unwrap() []error })
		if gok != wok || (gok && fmt.Sprint(gm.Unwrap()) != fmt.Sprint(wm.Unwrap())) {
			t.Errorf("Errorf(%q): Unwrap() []error differs from fmt's", c.format)
		}
	}
	var be *nilErr
	wrapped := &nilErr{"typed"}
	if !errors.As(errfmt.OwnErrorf("ctx: %w", wrapped), &be) || be != wrapped {
		t.Error("errors.As does not see the wrapped typed error")
	}
}

// The fuzz target builds a format from the supported directives and
// operands of the supported types, and compares with fmt.
var fuzzArgs = []any{
	errA, str{"strü"}, "plain", "q\"\x01é", []byte("by"), true, nil,
	0, -1, 255, int8(-128), int16(300), int32(-70000), int64(-1 << 63),
	uint(7), uint8(200), uint16(65535), uint32(1 << 31), uint64(1<<64 - 1), uintptr(16),
	0x1F600, 0x10FFFF, 0x110000,
}

// fuzzFormat returns the format, its operands, whether errfmt promises
// fmt's output for them and whether the format has a %w.
func fuzzFormat(data []byte) (format string, args []any, ok, hasW bool) {
	var b strings.Builder
	ok = true
	for i := 0; i+1 < len(data) && len(args) < 8; i += 2 {
		op, v := data[i], data[i+1]
		switch op % 8 {
		case 0:
			b.WriteString(" lit")
			b.WriteByte('a' + v%26)
		case 1:
			b.WriteString("%%")
		default:
			b.WriteByte('%')
			if op&0x10 != 0 {
				b.WriteByte('0')
			}
			if op&0x20 != 0 {
				b.WriteByte('-')
			}
			if op&0x40 != 0 {
				b.WriteByte('*')
				args = append(args, int(v%16)-8)
			} else if op&0x80 != 0 {
				b.WriteByte('0' + v%10)
			}
			verb := "vsdxXqw"[v%7]
			a := fuzzArgs[int(v/7)%len(fuzzArgs)]
			if !supported(verb, a) {
				ok = false
			}
			hasW = hasW || verb == 'w'
			b.WriteByte(verb)
			args = append(args, a)
		}
	}
	return b.String(), args, ok, hasW
}

// supported says whether errfmt promises fmt's output for verb on a.
func supported(verb byte, a any) bool {
	switch a.(type) {
	case error, fmt.Stringer:
		return strings.IndexByte("vsxXqw", verb) >= 0 && (verb != 'w' || isErr(a))
	case string, []byte:
		return strings.IndexByte("sxXq", verb) >= 0 || (verb == 'v' && isString(a))
	case bool:
		return verb == 'v'
	case nil:
		return verb == 'v'
	default:
		return strings.IndexByte("vdxXq", verb) >= 0
	}
}

func isErr(a any) bool    { _, ok := a.(error); return ok }
func isString(a any) bool { _, ok := a.(string); return ok }

func FuzzMatchesFmt(f *testing.F) {
	f.Add([]byte{2, 0, 0, 0, 0x92, 8, 0x53, 3})
	f.Add([]byte{0x13, 14, 0x62, 22, 1, 0, 0xa4, 40})
	for i := range 64 {
		f.Add([]byte{byte(i*37) | 2, byte(i * 11), byte(i*53) | 3, byte(i * 7)})
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		format, args, ok, hasW := fuzzFormat(data)
		if !ok {
			return
		}
		if got, want := errfmt.OwnErrorf(format, args...).Error(), fmt.Errorf(format, args...).Error(); got != want {
			t.Fatalf("Errorf(%q, %#v) = %q, fmt %q", format, args, got, want)
		}
		if hasW {
			return // Sprintf has no %w
		}
		if got, want := errfmt.OwnSprintf(format, args...), fmt.Sprintf(format, args...); got != want {
			t.Fatalf("Sprintf(%q, %#v) = %q, fmt %q", format, args, got, want)
		}
	})
}

// The exported functions (fmt natively, this package's own in the worker)
// print the same and wrap the same.
func TestExportedMatchesFmt(t *testing.T) {
	for _, c := range cases {
		if got, want := errfmt.Errorf(c.format, c.args...).Error(), fmt.Errorf(c.format, c.args...).Error(); got != want {
			t.Errorf("Errorf(%q) = %q, fmt %q", c.format, got, want)
		}
		if !strings.Contains(c.format, "%w") {
			if got, want := errfmt.Sprintf(c.format, c.args...), fmt.Sprintf(c.format, c.args...); got != want {
				t.Errorf("Sprintf(%q) = %q, fmt %q", c.format, got, want)
			}
		}
	}
	w := errfmt.Wrapf(errA, "at %d", 3)
	if w.Error() != "a: failed: at 3" || !errors.Is(w, errA) {
		t.Errorf("Wrapf = %q, wraps errA %v", w, errors.Is(w, errA))
	}
	if got := errfmt.Sprint("x", 1, 2); got != fmt.Sprint("x", 1, 2) {
		t.Errorf("Sprint = %q", got)
	}
}
