package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/payment"
)

// TestManySessionsOneAccount: one account holds 100,000 concurrent
// sessions (vouchers live and held at once) on a real embedded NATS,
// then ten nodes settle all of them concurrently in batches of the size
// nodes send (52 sessions). Before the per-session keys, an account's
// sessions shared one KV value and NATS' 1 MiB message limit stopped it
// at a few thousand. It reports what holding and settling cost.
func TestManySessionsOneAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	if raceEnabled {
		t.Skip("load test: run without the race detector")
	}
	const (
		sessions = 100_000
		nodes    = 10
		perBatch = 52 // node/settle.go maxSettleItems
		budget   = payment.BlockSize * 4
	)
	e := newEnv(t, ledger.Config{})
	e.clock.Set(time.Now()) // session keys' TTLs count from real time
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	e.account(t, "big", sessions*budget*2, 1)

	nodeKeys := make([]payment.NodeKey, nodes)
	tags := make([]payment.NodeTag, nodes)
	for i := range nodeKeys {
		nodeKeys[i] = nodeKey("load-node-" + string(rune('a'+i)))
		tags[i] = payment.TagOf(nodeKeys[i])
	}
	// Vouchers and one receipt per session, for node i % nodes (signing
	// is the client's cost, not measured).
	start := time.Now()
	items := make([]nodeproto.BatchItem, sessions)
	ids := make([]payment.VoucherID, sessions)
	expires := e.clock.Now().Add(time.Hour).Truncate(time.Second)
	parallel(sessions, func(i int) {
		var seed [32]byte
		binary.BigEndian.PutUint64(seed[:], uint64(i))
		seed = sha256.Sum256(seed[:])
		priv := ed25519.NewKeyFromSeed(seed[:])
		var sk payment.SessionKey
		copy(sk[:], priv.Public().(ed25519.PublicKey))
		v := payment.Voucher{Account: "big", Session: sk, Budget: budget, NodeCap: budget, Nodes: tags, Expires: expires}
		copy(v.Nonce[:], seed[:])
		if err := v.Sign(gw); err != nil {
			panic(err)
		}
		enc, _ := v.MarshalBinary()
		r := payment.Receipt{Voucher: v.ID(), Node: nodeKeys[i%nodes], Bytes: budget, Seq: 1}
		if err := r.Sign(priv); err != nil {
			panic(err)
		}
		rb, _ := r.MarshalBinary()
		items[i], ids[i] = nodeproto.BatchItem{Voucher: enc, Receipt: rb}, v.ID()
	})
	t.Logf("signed %d vouchers and receipts in %v (client side)", sessions, time.Since(start).Round(time.Millisecond))

	// Hold every voucher, all at once, as gateways issuing them would.
	start = time.Now()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.l.Hold(ctx, "big", ids[i], budget, expires); err != nil {
				if failed.Add(1) == 1 {
					t.Errorf("hold %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	holdTime := time.Since(start)
	a, err := e.l.Account(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if a.Sessions != sessions || a.Held != sessions*budget {
		t.Fatalf("after holds: %d sessions, %d held; want %d, %d", a.Sessions, a.Held, sessions, uint64(sessions*budget))
	}
	t.Logf("held %d vouchers in %v: %.0f holds/s; account record %d sessions, %d bytes held",
		sessions, holdTime.Round(time.Millisecond), sessions/holdTime.Seconds(), a.Sessions, a.Held)

	// Ten nodes settle concurrently, each its own sessions.
	start = time.Now()
	var batches atomic.Int64
	for n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []nodeproto.BatchItem
			for i := n; i < sessions; i += nodes {
				mine = append(mine, items[i])
			}
			for len(mine) > 0 {
				k := min(len(mine), perBatch)
				res, err := e.l.Settle(ctx, nodeproto.Batch{Node: nodeKeys[n], Account: "big", Items: mine[:k]})
				if err != nil || res.Applied != uint64(k)*budget {
					t.Errorf("node %d: applied %d of %d: %v", n, res.Applied, uint64(k)*budget, err)
					return
				}
				mine = mine[k:]
				batches.Add(1)
			}
		}()
	}
	wg.Wait()
	settleTime := time.Since(start)
	if t.Failed() {
		t.FailNow()
	}
	a, err = e.l.Account(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if a.Balance != sessions*budget || a.Spent != sessions*budget || a.Held != 0 || a.Sessions != 0 {
		t.Fatalf("after settlement: %+v", a)
	}
	t.Logf("settled %d sessions from %d nodes in %d batches in %v: %.0f sessions/s, %.0f batches/s, %.2f ms per batch of %d (%d per node)",
		sessions, nodes, batches.Load(), settleTime.Round(time.Millisecond), sessions/settleTime.Seconds(),
		float64(batches.Load())/settleTime.Seconds(), settleTime.Seconds()*1000/float64(batches.Load()), perBatch, batches.Load()/nodes)
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		}()
	}
	wg.Wait()
}
