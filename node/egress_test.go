package node_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/node"
)

// TestMaxEgress: with MaxEgress the node's content responses, all clients
// together, cannot go faster than the cap; the bytes are unchanged and the
// node's other endpoints are not paced.
func TestMaxEgress(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := buildFixture(t)  // big.bin: 1 MiB + 1000 bytes
	const limit = 1 << 20 // bytes per second; burst a tenth of it
	n := newNode(t, node.Config{MaxEgress: limit})
	if _, err := n.ImportCAR(ctx, bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	runNode(t, n)
	url := n.HTTPURL() + "/ipfs/" + f.root.String() + "/big.bin?format=car&dag-scope=entity"

	// Two clients at once share the budget: 2 × the CAR (> 2 MiB) cannot
	// be sent in less than (2 MiB - burst) / 1 MiB/s.
	start := time.Now()
	var wg sync.WaitGroup
	bodies := make([][]byte, 2)
	for i := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, body := httpGet(t, url, "")
			if code != 200 {
				t.Errorf("status %d", code)
			}
			bodies[i] = body
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := len(bodies[0]) + len(bodies[1])
	floor := time.Duration(float64(total-limit/10) / limit * float64(time.Second))
	if elapsed < floor {
		t.Fatalf("%d bytes in %v: faster than the %d B/s cap allows (at least %v)", total, elapsed, limit, floor)
	}
	if !bytes.Equal(bodies[0], bodies[1]) || len(bodies[0]) < len(f.big) {
		t.Fatalf("bodies of %d and %d bytes differ", len(bodies[0]), len(bodies[1]))
	}
	// The record endpoint is not paced (and not counted).
	if code, _, _ := httpGet(t, n.HTTPURL()+node.WellKnownRecordPath, ""); code != 200 {
		t.Fatalf("record: %d", code)
	}
}
