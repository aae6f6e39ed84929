package s3api_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
