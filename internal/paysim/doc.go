// Package paysim simulates optimistic payments on a whole network, to
// compare settlement policies and to check the published Fleek Network
// scale claim (10 Gbit/s per node at 256 KiB per payment is ~5,000
// receipts/s per node; 1,000 nodes ~5–10 M/s) against Verity's design
// (docs/payments.md).
//
// The model: Config.Nodes nodes each serve Config.AccountsPerNode accounts
// chosen by a Zipf popularity law, splitting NodeGbps × Utilization among
// them (popular accounts get more), with ±50% jitter per step. Every
// 256 KiB delivered is one receipt. Accounts are funded with 30–300% of
// what their traffic costs over the run, and frozen below FreezeFraction of
// their funding; nodes see balances and freezes as published every
// PublishEvery, stop serving frozen accounts, and settle per (node,
// account) as their Policy says, batch items being the sessions touched
// (uncommitted bytes / min(SessionBytes, NodeCap): a voucher pays one node
// at most NodeCap). Attackers model clients with a node of their own: each
// gets vouchers at the gateway's per-address rate while its target account
// is not seen frozen and settles each voucher's cap without serving;
// PolicyResult reports what they took against the bound, and what honest
// nodes were credited against what they served. The ledger side is a plain balance
// without the overdraft bound, so the worst negative balance shown is the
// exposure a policy lets accumulate. The same seed gives the same table.
//
// Usage:
//
//	res := paysim.Run(ctx, paysim.Config{Out: os.Stdout})
//	err := paysim.RunCommand(ctx, os.Args[3:], os.Stdout, os.Stderr) // `verity sim payments`
package paysim
