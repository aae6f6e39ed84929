package node_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/node"
)

const (
	childDirEnv = "VERITY_NODE_KILL_CHILD_DIR"
	childKeyEnv = "VERITY_NODE_KILL_CHILD_GWKEY"
	killWindow  = 512 << 10
)

// TestNodeKillChild runs a node for TestReceiptsSurviveKill9 until it is
// killed (or a minute passes).
func TestNodeKillChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("child of TestReceiptsSurviveKill9 only")
	}
	pub, err := base64.StdEncoding.DecodeString(os.Getenv(childKeyEnv))
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(node.Config{DataDir: dir, WebRTC: node.WebRTCConfig{Disabled: true}, Payments: node.PaymentConfig{
		CreditWindow: killWindow, GatewayKeys: []ed25519.PublicKey{pub},
		SyncInterval: time.Hour, // no fsync: a killed process must not need it
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		// Ready once Run serves: its HTTP API answers.
		err := testutil.Wait(10*time.Second, func() error {
			resp, err := http.Get(n.HTTPURL() + "/healthz")
			if err == nil {
				resp.Body.Close()
			}
			return err
		})
		if err != nil {
			fmt.Printf("NOT READY %v\n", err)
			return
		}
		fmt.Printf("READY %s %s\n", n.WebTransportURL(), base64.StdEncoding.EncodeToString(n.Record().Record.CertHashes[0].SHA256))
	}()
	_ = n.Run(ctx)
}

// A node acts on a receipt (sends more than its credit window allows
// without it) only after storing it: killed with SIGKILL right after a
// paid transfer, the node's data directory holds a receipt covering at
// least everything delivered beyond the window.
func TestReceiptsSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	fx := buildFixture(t)
	gwPub, gwKey, _ := ed25519.GenerateKey(nil)
	var nodeID string
	{
		n := newNode(t, node.Config{DataDir: dir})
		nodeID = n.ID()
		roots, err := n.ImportCAR(t.Context(), bytes.NewReader(fx.car))
		if err != nil {
			t.Fatal(err)
		}
		if err := n.PinLocal(roots...); err != nil {
			t.Fatal(err)
		}
		n.Close()
	}
	out, kill := startChild(t, "^TestNodeKillChild$", childDirEnv+"="+dir, childKeyEnv+"="+base64.StdEncoding.EncodeToString(gwPub))
	defer kill()
	sc := bufio.NewScanner(out)
	var url, hash string
	for i := 0; i < 100 && sc.Scan(); i++ {
		if f := strings.Fields(sc.Text()); len(f) == 3 && f[0] == "READY" {
			url, hash = f[1], f[2]
			break
		}
	}
	if url == "" {
		t.Fatal("child node did not start")
	}
	h, _ := base64.StdEncoding.DecodeString(hash)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	sess, closeSess, err := dialWT(ctx, url, h)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSess()

	w := newTestWorkerFor(t, gwKey, "acme", time.Hour, nodeID)
	got, err := w.fetchOn(ctx, sess, fx, "big.bin", true)
	if err != nil {
		t.Fatal(err)
	}
	kill()
	if got <= killWindow {
		t.Fatalf("transfer of %d bytes does not exceed the window %d", got, killWindow)
	}

	n := newNode(t, node.Config{DataDir: dir})
	e, ok := n.Receipts(w.signer.SessionKey())
	if !ok {
		t.Fatal("no session held after the kill")
	}
	if e.Receipt.Bytes+killWindow < uint64(got) {
		t.Fatalf("after kill -9 the node holds a receipt for %d bytes; it delivered at least %d with a window of %d", e.Receipt.Bytes, got, killWindow)
	}
	if err := e.Receipt.Verify(&e.Voucher, e.Voucher.ID(), mustNodeKey(t, n.ID())); err != nil {
		t.Fatalf("stored receipt: %v", err)
	}
	t.Logf("delivered %d verified bytes; receipt held after kill -9: %d bytes", got, e.Receipt.Bytes)
}

func mustNodeKey(t testing.TB, id string) payment.NodeKey {
	t.Helper()
	k, err := payment.ParseNodeID(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
