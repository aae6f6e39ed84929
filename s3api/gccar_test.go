package s3api_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// carPath is where the devnet's gateway keeps root's CAR for nodes.
func carPath(n *network, root string) string {
	return filepath.Join(n.d.DataDir(), "gateway", "content", root+".car")
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// gatewayMetric reads a metric of the gateway's /metrics (0 when absent).
func gatewayMetric(t *testing.T, n *network, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.d.Gateway().URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	_, rest, ok := strings.Cut(string(b), "\n"+name+" ")
	if !ok {
		return 0
	}
	v, err := strconv.ParseFloat(strings.SplitN(rest, "\n", 2)[0], 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}

// logged reports whether a log line holds every one of parts.
func (n *network) logged(parts ...string) bool {
	for _, l := range strings.Split(n.logs.String(), "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

// Collecting content removes its CAR from the gateway's content store
// (the objects' and the bucket's earlier roots'), counted in /metrics;
// what the bucket names keeps its CAR, and the same bytes stored again
// are kept and placed again.
func TestCollectedCARRemoved(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	t.Cleanup(func() {
		if t.Failed() {
			for _, l := range strings.Split(n.logs.String(), "\n") {
				if strings.Contains(l, "collected") || strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
					t.Log(l)
				}
			}
		}
	})
	c, _ := gcBucket(t, n, "gc-car")
	gone, keep := random(600<<10), random(300<<10)
	goneCID := putCID(t, c, "gc-car", "gone.bin", gone)
	keepCID := putCID(t, c, "gc-car", "keep.bin", keep)
	_, hist, _, _, err := n.d.S3().BucketRoots(t.Context(), "gc-car")
	if err != nil || len(hist) < 2 {
		t.Fatalf("history %v %v", hist, err)
	}
	firstRoot := hist[1] // after gone.bin
	del(t, c, "gc-car", "gone.bin")
	fi, err := os.Stat(carPath(n, goneCID))
	if err != nil {
		t.Fatalf("the object's CAR before collection: %v", err)
	}
	n.waitPinned(t, firstRoot)
	if !exists(carPath(n, firstRoot)) {
		t.Fatalf("no CAR of the root %s before collection", firstRoot)
	}
	if st := collectOf(t, n, 2, goneCID); st.Collected != 1 {
		dumpFailures(t, n)
		t.Fatalf("two passes: %+v", st)
	}
	dropped(t, n, goneCID, gone)
	eventually(t, "the collected object's CAR removed", func() bool { return !exists(carPath(n, goneCID)) })
	if _, placed := placement(t, n, firstRoot); placed {
		t.Fatalf("the bucket's earlier root %s still placed", firstRoot)
	}
	eventually(t, "the collected root's CAR removed", func() bool { return !exists(carPath(n, firstRoot)) })
	// The counters are added to after the file is removed: a removal
	// seen here may not be counted yet.
	eventually(t, "verity_content_collected_removed_bytes_total at least the object's CAR, "+strconv.FormatInt(fi.Size(), 10), func() bool {
		return gatewayMetric(t, n, "verity_content_collected_removed_bytes_total") >= float64(fi.Size())
	})
	eventually(t, "verity_content_collected_removed_total at least 2", func() bool {
		return gatewayMetric(t, n, "verity_content_collected_removed_total") >= 2
	})
	if !exists(carPath(n, keepCID)) {
		t.Fatal("the CAR of an object the bucket names was removed")
	}
	getEqual(t, c, "gc-car", "keep.bin", keep)
	// The same bytes again: stored, placed and held again.
	if again := putCID(t, c, "gc-car", "again.bin", gone); again != goneCID {
		t.Fatalf("the same bytes: %s, was %s", again, goneCID)
	}
	held(t, n, goneCID, gone)
	if !exists(carPath(n, goneCID)) {
		t.Fatal("no CAR for the bytes stored again")
	}
	getEqual(t, c, "gc-car", "again.bin", gone)
}

// A PUT of the same bytes racing the collection of their root: the PUT
// found the root placed and held, then the sweep unplaced it and every
// gateway was told to remove its CAR, then the PUT recorded the object
// and places the root again from that CAR. The CAR is not removed while
// the PUT holds it: the PUT is acknowledged once the nodes fetched it
// again, and the CAR stays.
func TestCollectedCARKeptForARacingStore(t *testing.T) {
	n := gcNetwork(t, time.Nanosecond)
	c, k := gcBucket(t, n, "gc-car-race")
	body := random(600 << 10)
	root := putRacingSweep(t, n, c, k, "gc-car-race", body, func(root string) {
		// The gateway has handled content.collected for the root.
		eventually(t, "the collected root's CAR looked at", func() bool {
			return n.logged("collected content's CAR", "root="+root)
		})
	})
	if !exists(carPath(n, root)) {
		t.Fatal("the CAR of a recorded object was removed")
	}
	if n.logged("collected content's CAR removed", "root="+root) {
		dumpFailures(t, n)
		t.Fatal("the CAR was removed while the PUT held it")
	}
}
