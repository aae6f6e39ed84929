package ledger_test

import (
	"strconv"
	"testing"

	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
)

// BenchmarkSettle measures settlement batches applied per second by one
// coordinator: each batch carries 16 sessions (32 signature checks) and
// is one compare-and-set on an account record holding 256 live sessions,
// plus the node's earnings update, on an embedded NATS with file storage.
func BenchmarkSettle(b *testing.B) {
	e := newEnv(b, ledger.Config{})
	ctx := ctxT(b)
	e.account(b, "acme", 1<<60, 1)
	n := nodeKey("node-a")
	const perBatch, pool = 16, 256
	sessions := make([]*session, pool)
	for i := range sessions {
		sessions[i] = newSession(b, "acme", strconv.Itoa(i), 1<<60)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		batch := nodeproto.Batch{Node: n, Account: "acme"}
		for j := 0; j < perBatch; j++ {
			batch.Items = append(batch.Items, sessions[(i*perBatch+j)%pool].deliver(b, n, 1))
		}
		b.StartTimer()
		res, err := e.l.Settle(ctx, batch)
		if err != nil || res.Applied != perBatch*blk {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
	b.ReportMetric(float64(b.N*perBatch)/b.Elapsed().Seconds(), "sessions/s")
}

// BenchmarkApplyCharge measures gateway metering batches applied per
// second: each is one compare-and-set of the account record (4 sites), the
// gateway.charged event and the statement entry.
func BenchmarkApplyCharge(b *testing.B) {
	e := newEnv(b, ledger.Config{})
	ctx := ctxT(b)
	e.account(b, "acme", 1<<60, 1)
	sites := map[string]uint64{"blog": 1 << 20, "shop": 1 << 18, "docs": 1 << 16, "app": 1 << 14}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := e.l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: uint64(i + 1), Sites: sites})
		if err != nil || res.Applied == 0 {
			b.Fatal(res, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "charges/s")
}
