package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

var requestCases = []struct {
	name   string
	in     string
	want   *Request
	err    error
	remain string // bytes left in the reader after the head
}{
	{name: "minimal", in: "VERITY/1 GET /ipfs/bafy\r\n\r\n",
		want: &Request{Method: "GET", Target: "/ipfs/bafy", Header: Header{}}},
	{name: "headers lower-cased and trimmed", in: "VERITY/1 GET /ipfs/bafy/a.txt?format=car&dag-scope=entity\r\nAccept:  application/vnd.ipld.car; version=1 \r\nX-Foo:\tbar\r\n\r\nBODY",
		want: &Request{Method: "GET", Target: "/ipfs/bafy/a.txt?format=car&dag-scope=entity",
			Header: Header{"accept": "application/vnd.ipld.car; version=1", "x-foo": "bar"}}, remain: "BODY"},
	{name: "empty value", in: "VERITY/1 GET /\r\nx:\r\n\r\n", want: &Request{Method: "GET", Target: "/", Header: Header{"x": ""}}},
	{name: "empty stream", in: "", err: io.EOF},
	{name: "eof in line", in: "VERITY/1 GET /x", err: io.ErrUnexpectedEOF},
	{name: "eof in header", in: "VERITY/1 GET /x\r\na: b\r\n", err: io.ErrUnexpectedEOF},
	{name: "bare lf", in: "VERITY/1 GET /x\n\r\n", err: ErrMalformed},
	{name: "bare lf header", in: "VERITY/1 GET /x\r\na: b\n\r\n", err: ErrMalformed},
	{name: "version", in: "VERITY/2 GET /x\r\n\r\n", err: ErrVersion},
	{name: "http", in: "GET /x HTTP/1.1\r\n\r\n", err: ErrMalformed},
	{name: "method", in: "VERITY/1 POST /x\r\n\r\n", err: ErrMalformed},
	{name: "lowercase method", in: "VERITY/1 get /x\r\n\r\n", err: ErrMalformed},
	{name: "no target", in: "VERITY/1 GET\r\n\r\n", err: ErrMalformed},
	{name: "relative target", in: "VERITY/1 GET ipfs/x\r\n\r\n", err: ErrMalformed},
	{name: "space in target", in: "VERITY/1 GET /a b\r\n\r\n", err: ErrMalformed},
	{name: "control in target", in: "VERITY/1 GET /a\x01b\r\n\r\n", err: ErrMalformed},
	{name: "header no colon", in: "VERITY/1 GET /x\r\nfoo\r\n\r\n", err: ErrMalformed},
	{name: "header bad name", in: "VERITY/1 GET /x\r\nfo o: x\r\n\r\n", err: ErrMalformed},
	{name: "header empty name", in: "VERITY/1 GET /x\r\n: x\r\n\r\n", err: ErrMalformed},
	{name: "header control value", in: "VERITY/1 GET /x\r\na: b\x00c\r\n\r\n", err: ErrMalformed},
	{name: "duplicate header", in: "VERITY/1 GET /x\r\na: b\r\nA: c\r\n\r\n", err: ErrMalformed},
	{name: "line too long", in: "VERITY/1 GET /" + strings.Repeat("a", MaxLineBytes) + "\r\n\r\n", err: ErrTooLarge},
	{name: "too many fields", in: "VERITY/1 GET /x\r\n" + manyFields(MaxHeaderFields+1) + "\r\n", err: ErrTooLarge},
	{name: "max fields", in: "VERITY/1 GET /x\r\n" + manyFields(MaxHeaderFields) + "\r\n", want: &Request{Method: "GET", Target: "/x", Header: fieldsHeader(MaxHeaderFields)}},
	{name: "head too large", in: "VERITY/1 GET /x\r\n" + bigFields(3, 7000) + "\r\n", err: ErrTooLarge},
}

func manyFields(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("f")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString(": v\r\n")
	}
	return b.String()
}

func fieldsHeader(n int) Header {
	h := Header{}
	for i := 0; i < n; i++ {
		h["f"+strings.Repeat("x", i)] = "v"
	}
	return h
}

func bigFields(n, size int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString("f" + strings.Repeat("x", i) + ": " + strings.Repeat("v", size) + "\r\n")
	}
	return b.String()
}

func TestReadRequest(t *testing.T) {
	for _, tc := range requestCases {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.in))
			got, err := ReadRequest(br)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !equalRequest(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tc.remain {
				t.Fatalf("remaining %q, want %q", rest, tc.remain)
			}
		})
	}
}

func equalRequest(a, b *Request) bool {
	return a.Method == b.Method && a.Target == b.Target && equalHeader(a.Header, b.Header)
}

func equalHeader(a, b Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

var responseCases = []struct {
	name   string
	in     string
	want   *Response
	err    error
	remain string
}{
	{name: "ok", in: "VERITY/1 200 OK\r\ncontent-type: application/vnd.ipld.car\r\n\r\nCARBYTES",
		want: &Response{Status: 200, Reason: "OK", Header: Header{"content-type": "application/vnd.ipld.car"}}, remain: "CARBYTES"},
	{name: "reason with spaces", in: "VERITY/1 404 Not Found\r\n\r\nno such block",
		want: &Response{Status: 404, Reason: "Not Found", Header: Header{}}, remain: "no such block"},
	{name: "empty reason", in: "VERITY/1 500\r\n\r\n", want: &Response{Status: 500, Header: Header{}}},
	{name: "empty", in: "", err: io.EOF},
	{name: "eof in head", in: "VERITY/1 200 OK\r\n", err: io.ErrUnexpectedEOF},
	{name: "version", in: "VERITY/9 200 OK\r\n\r\n", err: ErrVersion},
	{name: "two digit", in: "VERITY/1 20 OK\r\n\r\n", err: ErrMalformed},
	{name: "four digit", in: "VERITY/1 2000 OK\r\n\r\n", err: ErrMalformed},
	{name: "leading zero", in: "VERITY/1 099 OK\r\n\r\n", err: ErrMalformed},
	{name: "letters", in: "VERITY/1 2x0 OK\r\n\r\n", err: ErrMalformed},
	{name: "control reason", in: "VERITY/1 200 O\x02K\r\n\r\n", err: ErrMalformed},
	{name: "no status", in: "VERITY/1\r\n\r\n", err: ErrMalformed},
	{name: "too many fields", in: "VERITY/1 200 OK\r\n" + manyFields(MaxHeaderFields+1) + "\r\n", err: ErrTooLarge},
	{name: "line too long", in: "VERITY/1 200 " + strings.Repeat("a", MaxLineBytes) + "\r\n\r\n", err: ErrTooLarge},
}

func TestReadResponse(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(tc.in))
			got, err := ReadResponse(br)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got.Status != tc.want.Status || got.Reason != tc.want.Reason || !equalHeader(got.Header, tc.want.Header) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			rest, _ := io.ReadAll(br)
			if string(rest) != tc.remain {
				t.Fatalf("remaining %q, want %q", rest, tc.remain)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	req := &Request{Target: "/ipfs/bafkqaaa?format=car&dag-scope=entity&entity-bytes=0:1023",
		Header: Header{"Accept": "application/vnd.ipld.car; version=1; order=dfs; dups=y"}}
	var buf bytes.Buffer
	if _, err := req.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	want := "VERITY/1 GET /ipfs/bafkqaaa?format=car&dag-scope=entity&entity-bytes=0:1023\r\naccept: application/vnd.ipld.car; version=1; order=dfs; dups=y\r\n\r\n"
	if buf.String() != want {
		t.Fatalf("wrote %q, want %q", buf.String(), want)
	}
	got, err := ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != "GET" || got.Target != req.Target || got.Header.Get("ACCEPT") != req.Header["Accept"] {
		t.Fatalf("round trip: %+v", got)
	}

	resp := &Response{Status: 404, Header: Header{"content-type": "text/plain; charset=utf-8"}}
	buf.Reset()
	if _, err := resp.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("block not found\n")
	br := bufio.NewReader(&buf)
	gr, err := ReadResponse(br)
	if err != nil {
		t.Fatal(err)
	}
	if gr.Status != 404 || gr.Reason != "Not Found" || gr.OK() {
		t.Fatalf("response %+v", gr)
	}
	var se *StatusError
	if err := gr.Err(br); !errors.As(err, &se) || se.Status != 404 || se.Message != "block not found" {
		t.Fatalf("Err = %v", err)
	}
}

func TestWriteInvalid(t *testing.T) {
	cases := []struct {
		name string
		w    io.WriterTo
		err  error
	}{
		{"method", &Request{Method: "PUT", Target: "/x"}, ErrMalformed},
		{"target", &Request{Target: "x"}, ErrMalformed},
		{"target space", &Request{Target: "/a b"}, ErrMalformed},
		{"target long", &Request{Target: "/" + strings.Repeat("a", MaxLineBytes)}, ErrTooLarge},
		{"header name", &Request{Target: "/x", Header: Header{"a b": "c"}}, ErrMalformed},
		{"header value", &Request{Target: "/x", Header: Header{"a": "b\r\nc: d"}}, ErrMalformed},
		{"header dup case", &Request{Target: "/x", Header: Header{"a": "1", "A": "2"}}, ErrMalformed},
		{"too many", &Request{Target: "/x", Header: fieldsHeader(MaxHeaderFields + 1)}, ErrTooLarge},
		{"status", &Response{Status: 42}, ErrMalformed},
		{"reason", &Response{Status: 200, Reason: "a\nb"}, ErrMalformed},
		{"head", &Response{Status: 200, Header: Header{"a": strings.Repeat("v", 7000), "b": strings.Repeat("v", 7000), "c": strings.Repeat("v", 7000)}}, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			_, err := tc.w.WriteTo(&buf)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes on error", buf.Len())
			}
		})
	}
}

func TestReadErrorMessageLimit(t *testing.T) {
	r := strings.NewReader(strings.Repeat("x", MaxErrorBody+100))
	msg, err := ReadErrorMessage(r)
	if err != nil || len(msg) != MaxErrorBody || r.Len() != 100 {
		t.Fatalf("len %d, left %d, err %v", len(msg), r.Len(), err)
	}
	for in, want := range map[string]string{
		"bad \xff utf8":      "bad \uFFFD utf8",
		"two \xff\xfe bad":   "two \uFFFD\uFFFD bad",
		"cut \xe2\x82":       "cut \uFFFD\uFFFD",
		"kept: é € 𝄞 \uFFFD": "kept: é € 𝄞 \uFFFD",
		"":                   "",
	} {
		if msg, _ := ReadErrorMessage(strings.NewReader(in)); msg != want || !utf8.ValidString(msg) {
			t.Errorf("%q: msg %q, want %q", in, msg, want)
		}
	}
}

// countingReader counts bytes handed to the bufio.Reader.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestNeverReadsPastLimit(t *testing.T) {
	// An endless header line must stop at the line limit.
	endless := io.MultiReader(strings.NewReader("VERITY/1 GET /x\r\nx: "), repeatReader('a'))
	cr := &countingReader{r: endless}
	br := bufio.NewReaderSize(cr, 512)
	if _, err := ReadRequest(br); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
	if cr.n > MaxHeadBytes+512 {
		t.Fatalf("read %d bytes", cr.n)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
