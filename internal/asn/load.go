package asn

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// MaxLineBytes bounds one line of input.
const MaxLineBytes = 4096

// LoadFile reads a table from the file at path (see the package doc for the
// formats).
func LoadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Load(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Load reads a table from r (see the package doc for the formats).
func Load(r io.Reader) (*Table, error) {
	t := New()
	if err := t.Add(r); err != nil {
		return nil, err
	}
	return t, nil
}

// Add adds the entries read from r to t.
func (t *Table) Add(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("asn: gzip: %w", err)
		}
		defer zr.Close()
		br = bufio.NewReaderSize(zr, 64<<10)
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 0, MaxLineBytes), MaxLineBytes)
	line := 0
	for sc.Scan() {
		line++
		if err := t.parseLine(sc.Text()); err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				pe.Line = line
			}
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return &ParseError{Line: line + 1, Msg: fmt.Sprintf("line longer than %d bytes", MaxLineBytes), Err: ErrTooLong}
		}
		return fmt.Errorf("asn: read: %w", err)
	}
	return nil
}

func syntaxErr(format string, a ...any) error {
	return &ParseError{Msg: fmt.Sprintf(format, a...), Err: ErrSyntax}
}

func (t *Table) parseLine(s string) error {
	s = strings.TrimRight(s, "\r")
	if strings.TrimSpace(s) == "" || strings.HasPrefix(strings.TrimSpace(s), "#") {
		return nil
	}
	var fields []string
	if strings.Contains(s, "\t") {
		fields = strings.Split(s, "\t")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
	} else {
		fields = strings.Fields(s)
	}
	if len(fields) < 2 {
		return syntaxErr("want \"prefix ASN\" or \"start<TAB>end<TAB>ASN<TAB>country<TAB>description\", got %q", clip(s))
	}
	if strings.Contains(fields[0], "/") {
		return t.parsePrefixLine(fields)
	}
	return t.parseRangeLine(fields)
}

func (t *Table) parsePrefixLine(f []string) error {
	p, err := netip.ParsePrefix(f[0])
	if err != nil {
		return syntaxErr("bad prefix %q", clip(f[0]))
	}
	if len(f) > 3 {
		return syntaxErr("prefix line has %d fields, want 2 or 3", len(f))
	}
	asn, err := parseASN(f[1])
	if err != nil {
		return err
	}
	country := ""
	if len(f) == 3 {
		country = f[2]
	}
	t.Insert(p, asn, country)
	return nil
}

func (t *Table) parseRangeLine(f []string) error {
	if len(f) < 3 {
		return syntaxErr("range line has %d fields, want at least start, end and ASN", len(f))
	}
	start, err := netip.ParseAddr(f[0])
	if err != nil || start.Zone() != "" {
		return syntaxErr("bad range start %q", clip(f[0]))
	}
	end, err := netip.ParseAddr(f[1])
	if err != nil || end.Zone() != "" {
		return syntaxErr("bad range end %q", clip(f[1]))
	}
	asn, err := parseASN(f[2])
	if err != nil {
		return err
	}
	country, desc := "", ""
	if len(f) > 3 {
		country = f[3]
	}
	if len(f) > 4 {
		desc = strings.Join(f[4:], " ")
	}
	if s, e := start.Unmap(), end.Unmap(); s.Is4() != e.Is4() || e.Less(s) {
		return &ParseError{Msg: fmt.Sprintf("range %s-%s is empty or mixes families", start, end), Err: ErrRange}
	}
	if asn == 0 { // "Not routed"
		return nil
	}
	if err := t.InsertRange(start, end, asn, country); err != nil {
		return &ParseError{Msg: fmt.Sprintf("range %s-%s: %v", start, end, err), Err: ErrRange}
	}
	if desc != "" && desc != "Not routed" && t.Name(asn) == "" {
		t.SetName(asn, desc)
	}
	return nil
}

func parseASN(s string) (uint32, error) {
	d := s
	if len(d) > 2 && (d[0] == 'A' || d[0] == 'a') && (d[1] == 'S' || d[1] == 's') {
		d = d[2:]
	}
	n, err := strconv.ParseUint(d, 10, 32)
	if err != nil {
		return 0, syntaxErr("bad AS number %q", clip(s))
	}
	return uint32(n), nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
