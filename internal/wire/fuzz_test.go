package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func FuzzReadRequest(f *testing.F) {
	for _, tc := range requestCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, 16)
		req, err := ReadRequest(br)
		if err != nil {
			checkErr(t, err)
			return
		}
		consumed := cr.n - br.Buffered()
		if consumed > MaxHeadBytes {
			t.Fatalf("consumed %d bytes of head", consumed)
		}
		if len(req.Header) > MaxHeaderFields {
			t.Fatalf("%d fields", len(req.Header))
		}
		for k := range req.Header {
			if k != strings.ToLower(k) {
				t.Fatalf("name %q not lower-case", k)
			}
		}
		// What was read must be writable and read back the same.
		var buf bytes.Buffer
		if _, err := req.WriteTo(&buf); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := ReadRequest(bufio.NewReader(&buf))
		if err != nil || !equalRequest(req, again) {
			t.Fatalf("round trip: %v %+v %+v", err, req, again)
		}
	})
}

func FuzzReadResponse(f *testing.F) {
	for _, tc := range responseCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := &countingReader{r: bytes.NewReader(data)}
		br := bufio.NewReaderSize(cr, 16)
		resp, err := ReadResponse(br)
		if err != nil {
			checkErr(t, err)
			return
		}
		consumed := cr.n - br.Buffered()
		if consumed > MaxHeadBytes {
			t.Fatalf("consumed %d bytes of head", consumed)
		}
		if resp.Status < 100 || resp.Status > 999 || len(resp.Header) > MaxHeaderFields {
			t.Fatalf("bad response %+v", resp)
		}
		var buf bytes.Buffer
		if _, err := resp.WriteTo(&buf); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := ReadResponse(bufio.NewReader(&buf))
		if err != nil || again.Status != resp.Status || !equalHeader(again.Header, resp.Header) {
			t.Fatalf("round trip: %v %+v %+v", err, resp, again)
		}
	})
}

func checkErr(t *testing.T, err error) {
	t.Helper()
	if err == io.EOF {
		return
	}
	var he *HeadError
	if !errors.As(err, &he) {
		t.Fatalf("untyped error %T %v", err, err)
	}
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrVersion) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("unexpected error %v", err)
	}
}
