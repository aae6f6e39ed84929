package s3api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Streaming payloads (Content-Encoding: aws-chunked), which clients send
// over HTTPS: the body is a sequence of chunks, "hex-size[;chunk-
// signature=SIG]\r\n" + bytes + "\r\n", ending with a chunk of size 0,
// then optional trailer lines ("x-amz-checksum-crc32:BASE64") and an empty
// line. With STREAMING-AWS4-HMAC-SHA256-PAYLOAD each chunk's signature
// chains from the request's (the seed), computed with the SDK's stream
// signer (the string to sign of an event-stream message without headers
// is the S3 chunk's); STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER adds a
// trailer signed after the last chunk ("x-amz-trailer-signature:SIG");
// with STREAMING-UNSIGNED-PAYLOAD-TRAILER the chunks are unsigned. An
// announced checksum in the trailer is checked. Trailer lines may end in
// "\n" or "\r\n", and an empty line may come before the signature line
// (the MinIO SDK writes both). The decoded bytes are passed on as they
// are read; a chunk whose signature or a body whose checksum or trailer
// signature does not match fails the read at its end, and what was
// staged is dropped. Memory does not grow with a chunk's size.

const (
	maxChunkLine   = 4 << 10
	maxTrailerSize = 16 << 10
)

// streamAuth is what checking signed chunks needs.
type streamAuth struct {
	creds  aws.Credentials
	region string
	time   time.Time
	seed   []byte
	// trailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, whose trailer
	// is signed, chained from the last chunk's signature.
	trailer bool
}

// trailerSignature is the signature of a signed trailer whose lines
// ("name:value\n" each) are lines, chained from the last chunk's
// signature prev (hex): HMAC-SHA256 with the request's signing key of
// "AWS4-HMAC-SHA256-TRAILER\n" + time + "\n" + scope + "\n" + prev + "\n"
// + hex(SHA-256(lines)).
func (a *streamAuth) trailerSignature(prev string, lines []byte) []byte {
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	day := a.time.UTC().Format("20060102")
	key := mac([]byte("AWS4"+a.creds.SecretAccessKey), day)
	key = mac(key, a.region)
	key = mac(key, "s3")
	key = mac(key, "aws4_request")
	sum := sha256.Sum256(lines)
	return mac(key, "AWS4-HMAC-SHA256-TRAILER\n"+a.time.UTC().Format("20060102T150405Z")+"\n"+
		day+"/"+a.region+"/s3/aws4_request\n"+prev+"\n"+hex.EncodeToString(sum[:]))
}

// chunkedReader decodes an aws-chunked body: each chunk is read whole
// (at most maxChunkBytes, held as it arrives), checked against its
// signature, then passed on.
type chunkedReader struct {
	ctx     context.Context
	r       *bufio.Reader
	signer  *v4.StreamSigner // nil: unsigned chunks
	auth    *streamAuth
	trailer string    // the checksum header the client announced, lowercase, or ""
	sum     hash.Hash // its checksum of the decoded bytes, nil when not one checked here

	prevSig string // the last chunk's signature, hex
	buf     []byte // the current chunk, verified
	off     int
	done    bool
	err     error
}

// maxChunkBytes bounds one chunk (clients send 64 KiB to 1 MiB).
const maxChunkBytes = 16 << 20

func newChunkedReader(ctx context.Context, body io.Reader, auth *streamAuth, h http.Header) *chunkedReader {
	c := &chunkedReader{ctx: ctx, r: bufio.NewReaderSize(body, 64<<10), auth: auth}
	if auth != nil {
		c.signer = v4.NewStreamSigner(auth.creds, "s3", auth.region, auth.seed)
	}
	if t := strings.ToLower(strings.TrimSpace(h.Get("X-Amz-Trailer"))); t != "" {
		c.trailer = t
		switch t {
		case "x-amz-checksum-crc32":
			c.sum = crc32.NewIEEE()
		case "x-amz-checksum-crc32c":
			c.sum = crc32.New(crc32.MakeTable(crc32.Castagnoli))
		case "x-amz-checksum-sha1":
			c.sum = sha1.New()
		case "x-amz-checksum-sha256":
			c.sum = sha256.New()
		}
	}
	return c
}

var errChunk = ErrIncompleteBody.with("The aws-chunked body is malformed.")

func (c *chunkedReader) Read(p []byte) (int, error) {
	for c.off == len(c.buf) && c.err == nil {
		if c.done {
			c.err = io.EOF
			break
		}
		c.err = c.next()
	}
	if c.off == len(c.buf) {
		return 0, c.err
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}

// next reads, checks and holds the next chunk; after the last (empty)
// one, the trailer.
func (c *chunkedReader) next() error {
	s, err := c.line()
	if err != nil {
		return err
	}
	size, ext, _ := strings.Cut(s, ";")
	n, err := strconv.ParseInt(size, 16, 64)
	if err != nil || n < 0 {
		return errChunk
	}
	if n > maxChunkBytes {
		return errChunk.with("A chunk of the aws-chunked body is larger than %d bytes.", maxChunkBytes)
	}
	sig, _ := strings.CutPrefix(ext, "chunk-signature=")
	// The buffer grows with the bytes that arrive, not to the size the
	// chunk announces: a client that announces 16 MiB and sends nothing
	// holds nothing.
	buf := bytes.NewBuffer(c.buf[:0])
	got, err := buf.ReadFrom(io.LimitReader(c.r, n))
	c.buf, c.off = buf.Bytes(), 0
	if err != nil || got != n {
		return ErrIncompleteBody
	}
	if n > 0 {
		if s, err := c.line(); err != nil || s != "" {
			return errChunk
		}
	}
	if c.signer != nil {
		want, err := c.signer.GetSignature(c.ctx, nil, c.buf, c.auth.time)
		if err != nil {
			return ErrInternal
		}
		got, err := hex.DecodeString(sig)
		if err != nil || !hmac.Equal(got, want) {
			return ErrSignatureDoesNotMatch.with("A chunk's signature does not match its bytes.")
		}
		c.prevSig = sig
	}
	if c.sum != nil {
		c.sum.Write(c.buf)
	}
	if n == 0 {
		c.done = true
		return c.readTrailer()
	}
	return nil
}

// line reads one line of the chunks' framing, which ends in "\r\n".
func (c *chunkedReader) line() (string, error) {
	b, err := c.rawLine()
	if err != nil {
		return "", err
	}
	s, ok := strings.CutSuffix(b, "\r\n")
	if !ok {
		return "", errChunk
	}
	return s, nil
}

// rawLine reads up to and with the next "\n", at most maxChunkLine bytes.
func (c *chunkedReader) rawLine() (string, error) {
	var b []byte
	for {
		frag, err := c.r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > maxChunkLine {
			return "", errChunk
		}
		if err == nil {
			return string(b), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", ErrIncompleteBody
		}
	}
}

// readTrailer reads the trailer lines up to the empty one that ends
// them, checks the trailer's signature when it is signed and the
// announced checksum when it is one this server computes.
func (c *chunkedReader) readTrailer() error {
	signed := c.auth != nil && c.auth.trailer
	total := 0
	var got, sig string
	var lines []byte // the signed lines, each "name:value\n"
	for {
		s, err := c.trailerLine()
		if err != nil {
			if c.trailer == "" && !signed && errors.Is(err, ErrIncompleteBody) {
				return nil // no trailer section at all
			}
			return err
		}
		total += len(s) + 2
		if total > maxTrailerSize {
			return errChunk
		}
		if s == "" {
			if signed && sig == "" {
				continue // the MinIO SDK's empty line before the signature
			}
			break
		}
		k, v, ok := strings.Cut(s, ":")
		if !ok || sig != "" { // nothing but the end after the signature
			return errChunk
		}
		name := strings.ToLower(strings.TrimSpace(k))
		if signed && name == "x-amz-trailer-signature" {
			if sig = strings.TrimSpace(v); sig == "" {
				return errChunk
			}
			continue
		}
		lines = append(lines, s+"\n"...)
		if name == c.trailer {
			got = strings.TrimSpace(v)
		}
	}
	if signed {
		b, err := hex.DecodeString(sig)
		if err != nil || !hmac.Equal(b, c.auth.trailerSignature(c.prevSig, lines)) {
			return ErrSignatureDoesNotMatch.with("The trailer's signature does not match it.")
		}
	}
	if c.sum != nil && got != base64.StdEncoding.EncodeToString(c.sum.Sum(nil)) {
		return ErrBadDigest.with("The %s you specified did not match the calculated checksum.", strings.TrimPrefix(c.trailer, "x-amz-checksum-"))
	}
	return nil
}

// trailerLine reads one trailer line, ending in "\n" or "\r\n".
func (c *chunkedReader) trailerLine() (string, error) {
	b, err := c.rawLine()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(strings.TrimSuffix(b, "\n"), "\r"), nil
}
