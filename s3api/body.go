package s3api

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// readBody copies r's body to dst, at most max bytes, and checks it
// against what the request declared: the signed x-amz-content-sha256
// (XAmzContentSHA256Mismatch) and Content-MD5 (BadDigest). It returns
// the bytes read and their MD5. On an error dst holds bytes that must
// not be kept.
func readBody(r *http.Request, who identity, dst io.Writer, max int64) (int64, []byte, error) {
	var src io.Reader = r.Body
	length := r.ContentLength
	switch who.Payload {
	case streamingPayload, streamingUnsigned, streamingTrailer:
		length = bodyLength(r, who)
		if length < 0 {
			return 0, nil, ErrMissingContentLength.with("A streaming payload needs x-amz-decoded-content-length.")
		}
		src = newChunkedReader(r.Context(), r.Body, who.Stream, r.Header)
	}
	var wantMD5 []byte
	if v := r.Header.Get("Content-Md5"); v != "" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(b) != md5.Size {
			return 0, nil, ErrInvalidDigest
		}
		wantMD5 = b
	}
	if length > max {
		return 0, nil, ErrEntityTooLarge
	}
	m, h := md5.New(), sha256.New()
	n, err := io.Copy(io.MultiWriter(dst, m, h), io.LimitReader(src, max+1))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return n, nil, ErrIncompleteBody
	case err != nil:
		return n, nil, err
	case n > max:
		return n, nil, ErrEntityTooLarge
	case length >= 0 && n != length:
		return n, nil, ErrIncompleteBody
	}
	if validHexHash(who.Payload) && hex.EncodeToString(h.Sum(nil)) != who.Payload {
		return n, nil, ErrSHA256Mismatch
	}
	sum := m.Sum(nil)
	if wantMD5 != nil && !bytes.Equal(sum, wantMD5) {
		return n, nil, ErrBadDigest
	}
	return n, sum, nil
}

// bodyLength is the length of r's content: its Content-Length, or for a
// streaming payload its x-amz-decoded-content-length; -1 when unknown.
func bodyLength(r *http.Request, who identity) int64 {
	if strings.HasPrefix(who.Payload, "STREAMING-") {
		n, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	return r.ContentLength
}

func validHexHash(v string) bool { return len(v) == 64 && validPayloadHash(v) }

// readSmallBody reads and checks a request document of at most max bytes.
func readSmallBody(r *http.Request, who identity, max int64) ([]byte, error) {
	var buf bytes.Buffer
	if _, _, err := readBody(r, who, &buf, max); err != nil {
		if errors.Is(err, ErrEntityTooLarge) {
			return nil, ErrMalformedXML.with("The request document is larger than %d bytes.", max)
		}
		return nil, err
	}
	return buf.Bytes(), nil
}
