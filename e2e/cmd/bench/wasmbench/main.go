// Command wasmbench measures BLAKE3 hashing and CAR verification speed where
// it runs; the bench builds it with GOOS=js GOARCH=wasm and runs it under
// Node.js to measure the worker's verifier as compiled to wasm.
//
//	wasmbench -car FILE -root CID -path a/b [-min 1s]
//
// It prints one JSON object: {"blake3MBps":..., "verifyMBps":...,
// "verifyBaoMBps":..., "bytes":...}; verifyBaoMBps verifies the same CAR
// as the bao16 body a node sends on streams (transcoded first, not timed).
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/verity-cdn/verity/internal/blake3"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// Result is what wasmbench prints.
type Result struct {
	Blake3MBps    float64 `json:"blake3MBps"`
	VerifyMBps    float64 `json:"verifyMBps"`
	VerifyBaoMBps float64 `json:"verifyBaoMBps"`
	Bytes         int64   `json:"bytes"`
	SignUs        float64 `json:"signUs"` // receipt signing per 256 KiB block, µs
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "wasmbench:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("wasmbench", flag.ContinueOnError)
	carPath := fl.String("car", "", "CAR file of the entity (trustless-gateway order)")
	rootStr := fl.String("root", "", "root CID")
	path := fl.String("path", "", "path below the root")
	minDur := fl.Duration("min", time.Second, "minimum time per measurement")
	if err := fl.Parse(args); err != nil {
		return err
	}
	carBytes, err := os.ReadFile(*carPath)
	if err != nil {
		return err
	}
	root, err := cid.Parse(*rootStr)
	if err != nil {
		return err
	}
	req := verify.Request{Root: root}
	if *path != "" {
		req.Path = strings.Split(*path, "/")
	}
	var size int64
	verifyMBps, err := measure(*minDur, func() (int64, error) {
		n, err := io.Copy(io.Discard, verify.NewReader(bytes.NewReader(carBytes), req, verify.Options{}))
		size = n
		return n, err
	})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var body bytes.Buffer
	bw := car.NewBaoWriter(&body, 0)
	if _, err := bw.Write(carBytes); err != nil {
		return fmt.Errorf("bao16 body: %w", err)
	}
	if err := bw.Close(); err != nil {
		return fmt.Errorf("bao16 body: %w", err)
	}
	verifyBaoMBps, err := measure(*minDur, func() (int64, error) {
		n, err := io.Copy(io.Discard, verify.NewReader(bytes.NewReader(body.Bytes()), req, verify.Options{Bao: true}))
		if err == nil && n != size {
			err = fmt.Errorf("%d bytes from the bao16 body, %d from the CAR", n, size)
		}
		return n, err
	})
	if err != nil {
		return fmt.Errorf("verify bao16: %w", err)
	}
	blake3MBps, err := measure(*minDur, func() (int64, error) { return HashChunks(carBytes), nil })
	if err != nil {
		return err
	}
	signUs, err := SignPerBlock(*minDur)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	return json.NewEncoder(stdout).Encode(Result{Blake3MBps: blake3MBps, VerifyMBps: verifyMBps, VerifyBaoMBps: verifyBaoMBps, Bytes: size, SignUs: signUs})
}

// HashChunks hashes data in 256 KiB chunks, as blocks are hashed, with the
// BLAKE3 the worker's wasm uses (internal/blake3), and returns how many
// bytes it hashed.
func HashChunks(data []byte) int64 {
	const chunk = 256 << 10
	var sink byte
	for off := 0; off < len(data); off += chunk {
		sum := blake3.Sum256(data[off:min(off+chunk, len(data))])
		sink ^= sum[0]
	}
	_ = sink
	return int64(len(data))
}

// measure runs f until minDur has passed (at least twice) and returns MB/s
// (10^6 bytes per second) of the bytes f reports.
func measure(minDur time.Duration, f func() (int64, error)) (float64, error) {
	var total int64
	start := time.Now()
	for i := 0; i < 2 || time.Since(start) < minDur; i++ {
		n, err := f()
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, errors.New("no bytes")
		}
		total += n
	}
	return float64(total) / time.Since(start).Seconds() / 1e6, nil
}
