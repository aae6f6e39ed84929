package s3api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// FuzzChunkedReader: any body decodes or fails without panicking and
// without yielding more bytes than it holds, for every kind of streaming
// payload; a body encoded in chunks of any size decodes to its bytes.
func FuzzChunkedReader(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3))
	f.Add([]byte("5;chunk-signature=00\r\nhello\r\n0;chunk-signature=00\r\nx-amz-checksum-crc32:AAAAAA==\n\r\nx-amz-trailer-signature:00\r\n\r\n"), uint16(1))
	f.Add([]byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), uint16(7))
	f.Add([]byte("fffffffffffffffff\r\n"), uint16(0))
	f.Fuzz(func(t *testing.T, body []byte, size uint16) {
		auth := &streamAuth{creds: aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "secret"}, region: "us-east-1", time: time.Unix(1e9, 0), seed: make([]byte, 32)}
		for _, tc := range []struct {
			auth *streamAuth
			h    http.Header
		}{
			{nil, http.Header{}},
			{nil, http.Header{"X-Amz-Trailer": {"x-amz-checksum-crc32"}}},
			{auth, http.Header{}},
			{&streamAuth{creds: auth.creds, region: auth.region, time: auth.time, seed: auth.seed, trailer: true}, http.Header{"X-Amz-Trailer": {"x-amz-checksum-sha256"}}},
		} {
			out, _ := io.ReadAll(newChunkedReader(context.Background(), bytes.NewReader(body), tc.auth, tc.h))
			if len(out) > len(body) {
				t.Fatalf("%d bytes out of a %d-byte body", len(out), len(body))
			}
		}
		// Round trip, unsigned chunks of the fuzzed size.
		n := int(size)%4096 + 1
		var enc bytes.Buffer
		for off := 0; off < len(body); off += n {
			ch := body[off:min(off+n, len(body))]
			fmt.Fprintf(&enc, "%x\r\n%s\r\n", len(ch), ch)
		}
		enc.WriteString("0\r\n\r\n")
		out, err := io.ReadAll(newChunkedReader(context.Background(), &enc, nil, http.Header{}))
		if err != nil || !bytes.Equal(out, body) {
			t.Fatalf("round trip in %d-byte chunks: %d of %d bytes, %v", n, len(out), len(body), err)
		}
	})
}
