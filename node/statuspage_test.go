package node_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

// The status page tells an operator what the node is and holds, with its
// certificates, receipts and last errors; it is served to loopback only
// unless the node publishes it.
func TestStatusPage(t *testing.T) {
	f := buildFixture(t)
	var logs bytes.Buffer
	n := newNode(t, node.Config{Version: "v9.9.9", Region: "NL", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	runNode(t, n)
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	if err := n.PinLocal(f.root); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Get(n.HTTPURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	var st node.StatusReport
	testutil.Eventually(t, 20*time.Second, "the block count in the status", func() bool {
		resp, body := get(node.StatusPath)
		if resp.StatusCode != 200 {
			t.Fatalf("status: %d %s", resp.StatusCode, body)
		}
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		return st.Store.Counted && st.Store.Blocks == int64(len(f.blocks))
	})
	if st.ID != n.ID() || st.Version != "v9.9.9" || st.Region != "NL" || st.HTTP != n.HTTPURL() || st.Uptime == "" {
		t.Errorf("identity %+v", st)
	}
	if !slices.Contains(st.LocalPins, f.root.String()) {
		t.Errorf("local pins %v lack %s", st.LocalPins, f.root)
	}
	if st.Store.Bytes == 0 || st.Store.Capacity <= 0 {
		t.Errorf("store %+v", st.Store)
	}
	if len(st.Certificates) != 2 || !st.Certificates[0].NotAfter.After(time.Now()) || len(st.Certificates[0].SHA256) != 64 {
		t.Errorf("certificates %+v", st.Certificates)
	}
	if st.Coordinator.URL != "" || st.State() != "serving (joined to no coordinator)" {
		t.Errorf("coordinator %+v", st.Coordinator)
	}

	// A warning the node logs shows on the page, and still reaches its log.
	before := len(st.Errors)
	n.LogForTest().Warn("disk nearly full", "free", 12)
	_, body := get(node.StatusPath)
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Errors) != before+1 || st.Errors[0].Message != "disk nearly full" || st.Errors[0].Attrs != "free=12" || st.Errors[0].Level != "WARN" {
		t.Errorf("errors %+v", st.Errors)
	}
	if !strings.Contains(logs.String(), "disk nearly full") {
		t.Error("the warning did not reach the node's log")
	}

	resp, page := get("/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(string(page), n.ID()) || !strings.Contains(string(page), "disk nearly full") {
		t.Fatalf("page: %d %s %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}

	// From another address: refused, unless published.
	for _, path := range []string{"/", node.StatusPath} {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "203.0.113.9:4242"
		w := httptest.NewRecorder()
		n.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusForbidden {
			t.Errorf("%s from a remote address: %d, want 403", path, w.Code)
		}
	}
	pub := newNode(t, node.Config{StatusPublic: true})
	req := httptest.NewRequest("GET", node.StatusPath, nil)
	req.RemoteAddr = "203.0.113.9:4242"
	w := httptest.NewRecorder()
	pub.Handler().ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("published status from a remote address: %d", w.Code)
	}
}

// A node that stores its --max-storage refuses new pin orders, and says
// so; what it stores and offers is in its heartbeat.
func TestMaxStorageRefusesPins(t *testing.T) {
	f := buildFixture(t)
	n := newNode(t, node.Config{Capacity: 1})
	if _, err := n.ImportCAR(t.Context(), bytes.NewReader(f.car)); err != nil {
		t.Fatal(err)
	}
	hb := n.Status()
	if hb.Capacity != 1 || hb.Stored <= 1 || hb.Available() != 0 {
		t.Fatalf("heartbeat %+v (available %d)", hb, hb.Available())
	}
	var other string // a CID the node does not hold as a root
	for c := range f.blocks {
		if c != f.root {
			other = c.String()
			break
		}
	}
	err := n.Pin(t.Context(), nodeproto.Pin{Root: other, CAR: "http://127.0.0.1:1/x.car"})
	if !errors.Is(err, node.ErrStorageFull) {
		t.Fatalf("pin over --max-storage: %v, want ErrStorageFull", err)
	}
}
