package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/verity-cdn/verity/devnet"
	"github.com/verity-cdn/verity/e2e/browser"
	"github.com/verity-cdn/verity/internal/blake3/simd"
	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/cid"
	"github.com/verity-cdn/verity/internal/verify"
)

// wasmResult is what the wasmbench program prints.
type wasmResult struct {
	Blake3MBps    float64 `json:"blake3MBps"`
	VerifyMBps    float64 `json:"verifyMBps"`
	VerifyBaoMBps float64 `json:"verifyBaoMBps"`
	Bytes         int64   `json:"bytes"`
	SignUs        float64 `json:"signUs"`
}

// verifySpeed measures BLAKE3 and verification of the 64 MiB file's CAR, as
// a node serves it, natively and in wasm under Node.js.
func verifySpeed(ctx context.Context, d *devnet.Devnet, tmp string, res *Results) error {
	n := d.Nodes()[0]
	url := fmt.Sprintf("%s/ipfs/%s/%s?format=car&dag-scope=entity", strings.TrimRight(n.HTTPURL(), "/"), d.Root(), verifyFile)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := browser.NewHTTPClient(time.Minute).Do(req)
	if err != nil {
		return fmt.Errorf("CAR of %s: %w", verifyFile, err)
	}
	carBytes, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("CAR of %s: %s %v", verifyFile, resp.Status, err)
	}
	root, err := cid.Parse(d.Root())
	if err != nil {
		return err
	}
	vreq := verify.Request{Root: root, Path: strings.Split(verifyFile, "/")}

	raw := measure(time.Second, func() int64 { return hashChunks(carBytes) })
	res.add("blake3_native", raw, "MB/s", "zeebo/blake3, 256 KiB chunks")
	var verr error
	ver := measure(2*time.Second, func() int64 {
		n, err := io.Copy(io.Discard, verify.NewReader(bytes.NewReader(carBytes), vreq, verify.Options{}))
		if err != nil {
			verr = err
		}
		return n
	})
	if verr != nil {
		return fmt.Errorf("native verify: %w", verr)
	}
	res.add("verify_native", ver, "MB/s", "internal/verify, 64 MiB file CAR")
	var body bytes.Buffer
	bw := car.NewBaoWriter(&body, 0)
	if _, err := bw.Write(carBytes); err != nil {
		return err
	}
	if err := bw.Close(); err != nil {
		return err
	}
	verBao := measure(2*time.Second, func() int64 {
		n, err := io.Copy(io.Discard, verify.NewReader(bytes.NewReader(body.Bytes()), vreq, verify.Options{Bao: true}))
		if err != nil {
			verr = err
		}
		return n
	})
	if verr != nil {
		return fmt.Errorf("native verify of the bao16 body: %w", verr)
	}
	res.add("verify_native_bao16", verBao, "MB/s", "the same as its bao16 stream body (16 KiB groups, guts SIMD)")

	carPath := filepath.Join(tmp, "verify.car")
	if err := os.WriteFile(carPath, carBytes, 0o644); err != nil {
		return err
	}
	w, err := runWasmBench(ctx, tmp, carPath, d.Root(), verifyFile, false)
	if err != nil {
		return err
	}
	res.add("blake3_wasm", w.Blake3MBps, "MB/s", "internal/blake3 in Go, GOOS=js under Node.js")
	res.add("verify_wasm", w.VerifyMBps, "MB/s", "GOOS=js under Node.js")
	res.add("verify_wasm_bao16", w.VerifyBaoMBps, "MB/s", "the bao16 stream body, GOOS=js under Node.js (internal/blake3 in Go per 16 KiB group)")
	res.add("receipt_sign_wasm", w.SignUs, "µs/block", "worker signing one receipt per 256 KiB block, GOOS=js under Node.js")
	// The same with the BLAKE3 SIMD module installed, as in the worker.
	w, err = runWasmBench(ctx, tmp, carPath, d.Root(), verifyFile, true)
	if err != nil {
		return err
	}
	res.add("blake3_wasm_simd", w.Blake3MBps, "MB/s", "internal/blake3 with its WebAssembly SIMD module, GOOS=js under Node.js")
	res.add("verify_wasm_simd", w.VerifyMBps, "MB/s", "GOOS=js under Node.js, with the SIMD module")
	res.add("verify_wasm_bao16_simd", w.VerifyBaoMBps, "MB/s", "the bao16 stream body, GOOS=js under Node.js, with the SIMD module")
	return nil
}

// runWasmBench builds wasmbench for js/wasm and runs it under Node.js;
// with simd, with the BLAKE3 SIMD module installed by
// internal/blake3/simd/testdata/preload.js (as the worker script does).
func runWasmBench(ctx context.Context, tmp, carPath, root, path string, useSIMD bool) (wasmResult, error) {
	goroot, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return wasmResult{}, fmt.Errorf("go env GOROOT: %w", err)
	}
	execJS := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "go_js_wasm_exec")
	wasm := filepath.Join(tmp, "wasmbench.wasm")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", wasm, "github.com/verity-cdn/verity/e2e/cmd/bench/wasmbench")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		return wasmResult{}, fmt.Errorf("build wasmbench: %v\n%s", err, out)
	}
	cmd := exec.CommandContext(ctx, execJS, wasm, "-car", carPath, "-root", root, "-path", path, "-min", "2s")
	if useSIMD {
		module := filepath.Join(tmp, "blake3.wasm")
		if err := os.WriteFile(module, simd.Module(), 0o644); err != nil {
			return wasmResult{}, err
		}
		preload, err := filepath.Abs(filepath.Join("internal", "blake3", "simd", "testdata", "preload.js"))
		if err != nil {
			return wasmResult{}, err
		}
		if _, err := os.Stat(preload); err != nil {
			return wasmResult{}, fmt.Errorf("the SIMD module's Node preload (run the bench from the repository): %w", err)
		}
		cmd.Env = append(os.Environ(), "VERITY_BLAKE3_SIMD_WASM="+module, "NODE_OPTIONS=--require="+preload)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return wasmResult{}, fmt.Errorf("run wasmbench under node (%s): %v\n%s", execJS, err, stderr.Bytes())
	}
	var w wasmResult
	if err := json.Unmarshal(out, &w); err != nil {
		return wasmResult{}, fmt.Errorf("wasmbench output %q: %w", out, err)
	}
	return w, nil
}

// hashChunks hashes data in 256 KiB chunks, as blocks are hashed.
func hashChunks(data []byte) int64 {
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
func measure(minDur time.Duration, f func() int64) float64 {
	var total int64
	start := time.Now()
	for i := 0; i < 2 || time.Since(start) < minDur; i++ {
		total += f()
	}
	return float64(total) / time.Since(start).Seconds() / 1e6
}
