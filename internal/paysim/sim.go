package paysim

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

// PolicyResult is what one policy did on the simulated network.
type PolicyResult struct {
	Policy            string
	Receipts          uint64  // one per 256 KiB delivered
	ReceiptsPerSec    float64 // over the whole network
	Settlements       uint64  // batches submitted
	SettlementsPerSec float64
	ItemsPerSec       float64 // sessions settled per second (2 signature checks each)
	// WorstNegative is the lowest balance an account reaches once every
	// node has settled what it delivered (bytes, ≤ 0), and WorstNegativePct
	// that as a percentage of the account's initial balance.
	WorstNegative    int64
	WorstNegativePct float64
	AccountsNegative int // accounts that end below zero
	AccountsFrozen   int // accounts frozen during the run
	// Vouchers issued (each one ledger hold, written in batches per
	// account), and VouchersPerSec over the network.
	Vouchers       uint64
	VouchersPerSec float64
	// Refused is what visitors asked of nodes beyond what the account's
	// vouchers covered (served by the gateway path instead), bytes.
	Refused uint64

	// Served is what nodes delivered (receipted) in all, and Credited what
	// honest nodes were credited for it once everything settles; an honest
	// node is never credited more than it served.
	Served, Credited uint64
	// OvercreditedAccounts counts accounts debited more than was served to
	// them plus what attackers took (0 unless the arithmetic is wrong).
	OvercreditedAccounts int
	// Stolen is what the attackers' nodes settled without serving, and
	// StolenMax the most one attacker took; StolenBound is the bound the
	// voucher limits give one attacker: (VoucherBurst + VoucherRate ×
	// Duration) × NodeCap.
	Stolen, StolenMax, StolenBound uint64
}

// Result is the outcome of Run.
type Result struct {
	Config   Config
	Policies []PolicyResult
	// Claim: receipts per second per node and for the network at NodeGbps
	// and 256 KiB per payment.
	ReceiptsPerNode float64
	ReceiptsNetwork float64
}

// model is the network that every policy is run on: who serves whom, at
// what share of its bandwidth, and the accounts' funding.
type model struct {
	pairNode   []int32   // node of pair i
	pairAcct   []int32   // account of pair i
	pairRate   []float64 // bytes per second of pair i at full load
	acctNodes  []int32   // nodes serving each account
	acctFunded []int64   // initial balance, bytes
	acctRate   []float64 // bytes per second of all its pairs at full load
	acctSess   []float64 // concurrent sessions of each account
}

func buildModel(c Config) *model {
	rng := rand.New(rand.NewPCG(c.Seed, 0x7e51))
	zipf := rand.NewZipf(rng, 1.1, 1, uint64(c.Accounts-1))
	m := &model{acctNodes: make([]int32, c.Accounts), acctFunded: make([]int64, c.Accounts)}
	nodeBps := c.NodeGbps * 1e9 / 8 * c.Utilization
	expected := make([]float64, c.Accounts) // bytes over Duration
	for n := 0; n < c.Nodes; n++ {
		chosen := map[int32]float64{}
		for len(chosen) < c.AccountsPerNode {
			a := int32(zipf.Uint64())
			chosen[a] = 1 / float64(a+1) // popular accounts get more of this node
		}
		// Map iteration order is random: sort the accounts for determinism.
		accts := make([]int32, 0, len(chosen))
		for a := range chosen {
			accts = append(accts, a)
		}
		sortInt32(accts)
		var sum float64 // in order: a float sum depends on it
		for _, a := range accts {
			sum += chosen[a]
		}
		for _, a := range accts {
			rate := nodeBps * chosen[a] / sum
			m.pairNode = append(m.pairNode, int32(n))
			m.pairAcct = append(m.pairAcct, a)
			m.pairRate = append(m.pairRate, rate)
			m.acctNodes[a]++
			expected[a] += rate * c.Duration.Seconds()
		}
	}
	m.acctRate = make([]float64, c.Accounts)
	m.acctSess = make([]float64, c.Accounts)
	var total float64
	for i, r := range m.pairRate {
		m.acctRate[m.pairAcct[i]] += r
		total += r
	}
	for a, r := range m.acctRate {
		m.acctSess[a] = float64(c.Sessions) * r / total
	}
	for a := range m.acctFunded {
		// Funding from 30% to 300% of the run's expected spend: some
		// accounts run dry mid-run, most do not. Unserved accounts get a
		// nominal balance.
		f := 0.3 + 2.7*rng.Float64()
		m.acctFunded[a] = int64(max(expected[a]*f, 1<<30))
	}
	return m
}

func sortInt32(s []int32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Run simulates every policy of cfg on the same network and traffic, and
// writes the table to cfg.Out when set. It stops early, with what it has,
// when ctx is done.
func Run(ctx context.Context, cfg Config) Result {
	cfg = cfg.normalize()
	m := buildModel(cfg)
	res := Result{Config: cfg}
	res.ReceiptsPerNode = cfg.NodeGbps * 1e9 / 8 / payment.BlockSize
	res.ReceiptsNetwork = res.ReceiptsPerNode * float64(cfg.Nodes)
	for _, p := range cfg.Policies {
		res.Policies = append(res.Policies, runPolicy(ctx, cfg, m, p))
	}
	if cfg.Out != nil {
		res.WriteTable(cfg.Out)
	}
	return res
}

func runPolicy(ctx context.Context, c Config, m *model, p Policy) PolicyResult {
	// The same jitter stream for every policy, so they see the same
	// demand (until freezing makes them diverge).
	rng := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	nAcct := len(m.acctFunded)
	balance := make([]int64, nAcct)   // the ledger's
	threshold := make([]int64, nAcct) // freezing threshold
	frozen := make([]bool, nAcct)     // the ledger's
	everFrozen := make([]bool, nAcct)
	viewBal := make([]int64, nAcct) // published to nodes
	viewFrozen := make([]bool, nAcct)
	for a := range balance {
		balance[a] = m.acctFunded[a]
		threshold[a] = int64(float64(m.acctFunded[a]) * c.FreezeFraction)
	}
	copy(viewBal, balance)
	pairs := len(m.pairNode)
	uncommitted := make([]float64, pairs) // bytes receipted, not settled
	sinceLast := make([]time.Duration, pairs)
	receiptFrac := make([]float64, pairs) // bytes toward the next receipt

	var out PolicyResult
	out.Policy = p.Name
	served := make([]float64, nAcct) // bytes receipted per account
	stolen := make([]float64, nAcct) // bytes attackers settled per account
	// Attackers: each targets one of the most popular accounts and holds
	// a token bucket of vouchers.
	tokens := make([]float64, c.Attackers)
	took := make([]float64, c.Attackers)
	for k := range tokens {
		tokens[k] = float64(c.VoucherBurst)
	}
	out.StolenBound = uint64((float64(c.VoucherBurst) + c.VoucherRate*c.Duration.Seconds()) * float64(c.NodeCap))
	holds := !p.NoHolds
	budget := float64(c.VoucherBudget)
	unspent := make([]float64, nAcct) // budget of vouchers issued, not delivered yet
	held := make([]float64, nAcct)    // the ledger's holds: budget issued, not settled
	demand := make([]float64, pairs)  // bytes asked of each pair this step
	asked := make([]float64, nAcct)
	// hold issues n vouchers of account a if its available funds cover
	// them (with holds) and returns how many were issued.
	hold := func(a int32, n float64) float64 {
		if holds {
			n = min(n, math.Floor((float64(balance[a])-held[a])/budget))
		}
		if n <= 0 {
			return 0
		}
		held[a] += n * budget
		unspent[a] += n * budget
		out.Vouchers += uint64(n)
		return n
	}
	var items float64
	dt := c.Tick.Seconds()
	steps := int(c.Duration / c.Tick)
	publish := max(int(c.PublishEvery/c.Tick), 1)

	settle := func(i int) {
		a := m.pairAcct[i]
		u := uncommitted[i]
		if u <= 0 {
			return
		}
		balance[a] -= int64(u)
		held[a] = max(held[a]-u, 0) // settling releases as much of the holds
		out.Settlements++
		// One item per session the node served since its last
		// settlement: the account's sessions on this node (its share of
		// the account's traffic), at most one per block, and at least
		// u / NodeCap (a session pays one node at most NodeCap).
		onNode := math.Ceil(m.acctSess[a] * m.pairRate[i] / m.acctRate[a])
		items += max(math.Ceil(u/float64(min(c.SessionBytes, c.NodeCap))), min(onNode, math.Ceil(u/payment.BlockSize)))
		uncommitted[i], sinceLast[i] = 0, 0
		if !frozen[a] && balance[a] < threshold[a] {
			frozen[a], everFrozen[a] = true, true
		}
	}

	for step := 0; step < steps; step++ {
		if step%64 == 0 && ctx.Err() != nil {
			break
		}
		if step%publish == 0 {
			copy(viewBal, balance)
			copy(viewFrozen, frozen)
		}
		for k := range tokens {
			a := k % nAcct
			tokens[k] = min(tokens[k]+c.VoucherRate*dt, float64(c.VoucherBurst))
			// The gateway issues no voucher for an account it sees frozen;
			// the attacker's node settles each voucher's cap at once.
			for !viewFrozen[a] && tokens[k] >= 1 {
				if hold(int32(a), 1) == 0 {
					break // the account's funds are held: no voucher
				}
				tokens[k]--
				unspent[a] -= budget // the attacker's session asks nothing of honest nodes
				claim := float64(c.NodeCap)
				held[a] -= claim
				balance[a] -= int64(claim)
				stolen[a] += claim
				took[k] += claim
				out.Settlements++
				items++
				if !frozen[a] && balance[a] < threshold[a] {
					frozen[a], everFrozen[a] = true, true
				}
			}
		}
		// What visitors ask of nodes this step, and the vouchers it
		// takes: every session holds one (on average half spent), and
		// more are issued as budgets run out, while the account's
		// available funds cover them.
		clear(asked)
		for i := 0; i < pairs; i++ {
			demand[i] = m.pairRate[i] * dt * (0.5 + rng.Float64())
			asked[m.pairAcct[i]] += demand[i]
		}
		for a := range asked {
			if viewFrozen[a] || asked[a] == 0 {
				continue
			}
			if need := m.acctSess[a]*budget/2 + asked[a] - unspent[a]; need > 0 {
				hold(int32(a), math.Ceil(need/budget))
			}
		}
		for i := 0; i < pairs; i++ {
			a := m.pairAcct[i]
			sinceLast[i] += c.Tick
			if !viewFrozen[a] {
				b := demand[i]
				if holds {
					// Nodes serve only under vouchers: the rest goes to
					// the gateway path.
					if f := unspent[a] / asked[a]; f < 1 {
						out.Refused += uint64(b * (1 - max(f, 0)))
						b *= max(f, 0)
					}
				}
				// Receipts are whole blocks; the remainder waits for the
				// next step.
				receiptFrac[i] += b
				blocks := math.Floor(receiptFrac[i] / payment.BlockSize)
				unspent[a] -= b
				receiptFrac[i] -= blocks * payment.BlockSize
				out.Receipts += uint64(blocks)
				uncommitted[i] += blocks * payment.BlockSize
				served[a] += blocks * payment.BlockSize
				if p.PerReceipt {
					if blocks > 0 {
						out.Settlements += uint64(blocks) - 1
						items += blocks - 1
						settle(i)
					}
					continue
				}
			}
			nodes := int(m.acctNodes[a])
			if p.IgnoreNodes {
				nodes = 1
			}
			st := payment.SettleState{Uncommitted: uint64(uncommitted[i]), Balance: viewBal[a], Nodes: nodes, SinceLast: sinceLast[i]}
			if p.Settle.ShouldSettle(st) {
				settle(i)
			}
		}
	}
	secs := c.Duration.Seconds()
	out.ReceiptsPerSec = float64(out.Receipts) / secs
	out.SettlementsPerSec = float64(out.Settlements) / secs
	out.ItemsPerSec = items / secs
	out.VouchersPerSec = float64(out.Vouchers) / secs
	// Whatever is still uncommitted is settled eventually: count it.
	for i := 0; i < pairs; i++ {
		balance[m.pairAcct[i]] -= int64(uncommitted[i])
	}
	for a := range balance {
		debited := float64(m.acctFunded[a] - balance[a])
		credited := debited - stolen[a]
		out.Served += uint64(served[a])
		out.Credited += uint64(credited)
		out.Stolen += uint64(stolen[a])
		if credited > served[a]+1 {
			out.OvercreditedAccounts++
		}
		if everFrozen[a] {
			out.AccountsFrozen++
		}
		if balance[a] < 0 {
			out.AccountsNegative++
			if balance[a] < out.WorstNegative {
				out.WorstNegative = balance[a]
			}
			if pct := 100 * float64(balance[a]) / float64(m.acctFunded[a]); pct < out.WorstNegativePct {
				out.WorstNegativePct = pct
			}
		}
	}
	for _, t := range took {
		out.StolenMax = max(out.StolenMax, uint64(t))
	}
	return out
}
