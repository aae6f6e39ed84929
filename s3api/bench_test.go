package s3api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The S3 API's throughput against the same bytes to and from a plain
// directory server on loopback: PUT and GET of 1 MiB and 256 MiB objects
// (every PUT new bytes: each iteration changes the first eight), and 4 KiB
// objects per second. A PUT through the API is acknowledged once two
// nodes hold the object; the directory server writes one file.

var benchSizes = []int{1 << 20, 256 << 20}

func BenchmarkS3Put(b *testing.B) {
	n := startNetwork(b)
	c := client(n, n.account(b, "bench"))
	_, _ = c.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")})
	for _, size := range append([]int{4 << 10}, benchSizes...) {
		body := random(size)
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint64(body, uint64(i)^uint64(size)<<32)
				if _, err := c.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"),
					Key: aws.String(fmt.Sprintf("%s/%d", sizeName(size), i)), Body: bytes.NewReader(body)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

func BenchmarkS3Get(b *testing.B) {
	n := startNetwork(b)
	c := client(n, n.account(b, "bench"))
	_, _ = c.CreateBucket(b.Context(), &s3.CreateBucketInput{Bucket: aws.String("bench")})
	for _, size := range append([]int{4 << 10}, benchSizes...) {
		key := aws.String("get/" + sizeName(size))
		if _, err := c.PutObject(b.Context(), &s3.PutObjectInput{Bucket: aws.String("bench"), Key: key, Body: bytes.NewReader(random(size))}); err != nil {
			b.Fatal(err)
		}
		b.Run(sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				out, err := c.GetObject(b.Context(), &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key})
				if err != nil {
					b.Fatal(err)
				}
				if n, err := io.Copy(io.Discard, out.Body); err != nil || n != int64(size) {
					b.Fatalf("%d bytes, %v", n, err)
				}
				out.Body.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

// dirServer is the baseline: PUT writes the body to a file (synced, as
// the nodes sync their pins), GET serves it.
func dirServer(b *testing.B) string {
	dir := b.TempDir()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := filepath.Join(dir, strings.ReplaceAll(strings.TrimPrefix(r.URL.Path, "/"), "/", "_"))
		switch r.Method {
		case http.MethodPut:
			f, err := os.Create(p)
			if err == nil {
				_, err = io.Copy(f, r.Body)
				if err == nil {
					err = f.Sync()
				}
				f.Close()
			}
			if err != nil {
				http.Error(w, err.Error(), 500)
			}
		case http.MethodGet:
			http.ServeFile(w, r, p)
		}
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

func BenchmarkDirServer(b *testing.B) {
	url := dirServer(b)
	ctx := context.Background()
	for _, size := range append([]int{4 << 10}, benchSizes...) {
		body := random(size)
		b.Run("put/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint64(body, uint64(i))
				req, _ := http.NewRequestWithContext(ctx, http.MethodPut, fmt.Sprintf("%s/%s/%d", url, sizeName(size), i), bytes.NewReader(body))
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
		b.Run("get/"+sizeName(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			for b.Loop() {
				resp, err := http.Get(fmt.Sprintf("%s/%s/0", url, sizeName(size)))
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "objects/s")
		})
	}
}

func sizeName(n int) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}

// BenchmarkS3MultipartMemory uploads an object of VERITY_S3_MP_MIB MiB
// (default 256) in 8 MiB parts, one at a time, and completes it, and
// reads it back whole, checking it is byte-equal (SHA-256 of the parts
// sent against that of the body read), and reports the process's peak
// heap over both (client, gateway and nodes together): it stays near a
// part's size however large the object.
func BenchmarkS3MultipartMemory(b *testing.B) {
	n := startNetwork(b)
	c := client(n, n.account(b, "bench"))
	ctx := b.Context()
	_, _ = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")})
	mib := 256
	if v, err := strconv.Atoi(os.Getenv("VERITY_S3_MP_MIB")); err == nil && v >= 8 {
		mib = v
	}
	part := random(8 << 20)
	for i := 0; b.Loop(); i++ {
		runtime.GC()
		var peak atomic.Uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > peak.Load() {
					peak.Store(ms.HeapInuse)
				}
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		key := aws.String(fmt.Sprintf("mp/%d", i))
		up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("bench"), Key: key})
		if err != nil {
			b.Fatal(err)
		}
		var parts []types.CompletedPart
		sent := sha256.New()
		for p := 1; p <= mib/8; p++ {
			binary.BigEndian.PutUint64(part, uint64(i)<<32|uint64(p))
			sent.Write(part)
			out, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("bench"), Key: key, UploadId: up.UploadId,
				PartNumber: aws.Int32(int32(p)), Body: bytes.NewReader(part)})
			if err != nil {
				b.Fatal(err)
			}
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(p)), ETag: out.ETag})
		}
		if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String("bench"), Key: key, UploadId: up.UploadId,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
			b.Fatal(err)
		}
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bench"), Key: key})
		if err != nil {
			b.Fatal(err)
		}
		read := sha256.New()
		nread, err := io.Copy(read, got.Body)
		got.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		if nread != int64(mib)<<20 || !bytes.Equal(read.Sum(nil), sent.Sum(nil)) {
			b.Fatalf("read back %d bytes, not byte-equal to the %d MiB sent", nread, mib)
		}
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
		b.ReportMetric(float64(mib), "object-MiB")
	}
}
