package paysim

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable prints the comparison table and the figures for the Fleek
// Network claim.
func (r Result) WriteTable(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "payments simulation: %d nodes at %.1f Gbit/s × %.0f%%, %d accounts (%d per node), %d concurrent sessions (vouchers of %d MiB held on the account), %s simulated, balances published every %s, seed %d\n\n",
		c.Nodes, c.NodeGbps, 100*c.Utilization, c.Accounts, c.AccountsPerNode, c.Sessions, c.VoucherBudget>>20, c.Duration, c.PublishEvery, c.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "policy\treceipts/s\tsettlements/s\tsessions settled/s\tvouchers/s\tworst balance (GiB)\tworst (% of funding)\taccounts < 0\taccounts frozen\tnot covered by vouchers\t")
	for _, p := range r.Policies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%.2f%%\t%d\t%d\t%.2f%%\t\n", p.Policy, human(p.ReceiptsPerSec), human(p.SettlementsPerSec),
			human(p.ItemsPerSec), human(p.VouchersPerSec), float64(p.WorstNegative)/(1<<30), p.WorstNegativePct, p.AccountsNegative, p.AccountsFrozen,
			100*float64(p.Refused)/float64(max(p.Served+p.Refused, 1)))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nsettlement cost per node (of %d):\n", c.Nodes)
	for _, p := range r.Policies {
		fmt.Fprintf(w, "  %-22s %.3f batches/s, %s sessions/s (%s signature checks/s at the coordinator)\n",
			p.Policy+":", p.SettlementsPerSec/float64(c.Nodes), human(p.ItemsPerSec/float64(c.Nodes)), human(2*p.ItemsPerSec/float64(c.Nodes)))
	}
	if c.Attackers > 0 && len(r.Policies) > 0 {
		p := r.Policies[0]
		fmt.Fprintf(w, "\nattackers: %d clients with their own node, vouchers %d at once then %.2f/s, %d MiB per node per voucher: each took at most %d MiB (bound %d MiB), %.1f GiB in all\n",
			c.Attackers, c.VoucherBurst, c.VoucherRate, c.NodeCap>>20, p.StolenMax>>20, p.StolenBound>>20, float64(p.Stolen)/(1<<30))
	}
	fmt.Fprintf(w, "\nclaim: %.1f Gbit/s at 256 KiB per payment = %s receipts/s per node, %s/s for %d nodes\n",
		c.NodeGbps, human(r.ReceiptsPerNode), human(r.ReceiptsNetwork), c.Nodes)
	if c.VerifyPerCore > 0 {
		fmt.Fprintf(w, "measured: %s receipt verifications/s per core here → %.2f cores per node to check its receipts at %.1f Gbit/s\n",
			human(c.VerifyPerCore), r.ReceiptsPerNode/c.VerifyPerCore, c.NodeGbps)
		for _, p := range r.Policies {
			fmt.Fprintf(w, "  coordinator under %q: %s signature checks/s → %.1f cores\n",
				p.Policy, human(2*p.ItemsPerSec), 2*p.ItemsPerSec/c.VerifyPerCore)
		}
	}
}

// human formats a rate with k/M/G suffixes.
func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}
