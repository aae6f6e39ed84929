// Package ledger is the coordinator's ledger of accounts and node
// earnings, on NATS JetStream KV (internal/events), and its settlement of
// node receipts (docs/payments.md).
//
// Balances are in bytes of verified delivery: a top-up converts money to
// bytes at the price of the day, outside the ledger; TopUp is the
// development faucet. The "ledger" bucket holds each account's totals
// (key "acct.<name>": balance, holds, freezing threshold and flag, spend)
// and one key per live session ("sess.<voucher id>": the bytes settled to
// each node, what it still holds), with a per-key TTL of voucher expiry +
// SettleGrace + PruneMargin. Applying a batch writes the account and its
// sessions in one JetStream atomic batch whose every message expects its
// key's last sequence as read: a multi-key compare-and-set, so concurrent
// settlements never lose an update and nothing is ever half applied. The
// per-(session, node) counters make it idempotent: only the increase of a
// receipt over what that node was already paid for that session is
// applied, capped by the voucher's budget over all nodes. An account's
// size no longer grows with its sessions (TestManySessionsOneAccount: 100,000
// at once). Node earnings are mirrored, as cumulative per-account
// counters, in the "earnings" bucket.
//
// Hold reserves a voucher's budget on its account when the gateway issues
// it (available = balance − held must cover it); settling under the
// voucher releases as much, the rest lapses at its expiry.
//
// Usage:
//
//	l, err := ledger.New(ctx, ledger.Config{Bus: bus, Keys: payment.NewKeySet(gatewayPub)})
//	acct, err := l.CreateAccount(ctx, "acme", 0)
//	acct, err = l.TopUp(ctx, "acme", 100<<30)
//	err = l.Hold(ctx, "acme", voucher.ID(), voucher.Budget, voucher.Expires)
//	res, err := l.Settle(ctx, nodeproto.Batch{Node: nodeKey, Account: "acme", Items: items})
//	earned, err := l.Earnings(ctx, nodeKey.String())
//	res2, err := l.ApplyCharge(ctx, ledger.Charge{Account: "acme", Gateway: "gw1", Seq: seq, Sites: bySite})
//	dash, err := l.Dashboard(ctx, "acme")      // spend by site and node, recent top-ups
//	lines, err := l.Statement(ctx, "acme", ledger.StatementQuery{Since: t})
//
// # Spend by site, gateway charges, statement
//
// Vouchers name the site of their session; Settle adds what it applies to
// the account's per-site spend in the same compare-and-set. ApplyCharge
// debits what a gateway served itself, once per (gateway, Seq): the record
// keeps each gateway's last applied Seq. Every balance change is also
// appended to the stream VERITY_LEDGER (StatementStream), deduplicated by
// type, account and revision: the account's statement, bounded by
// Config.StatementDepth entries per type and Config.StatementMaxAge.
//
// # Bounds
//
// A balance never goes below −Config.MaxOverdraft (default 1 GiB): bytes
// beyond it are deferred, reported in nodeproto.ItemResult.Deferred, and settle
// after a top-up. An account whose balance is below its threshold
// (Config.FreezeBelow, default 256 MiB) is frozen: nodes refuse its
// sessions (payment.ErrAccountFrozen) until a top-up unfreezes it. Receipts
// of a voucher settle until its expiry + Config.SettleGrace (default 24 h).
//
// # Events
//
// receipts.settled (per applied batch, with bytes by site), gateway.charged
// (per applied charge), account.frozen and
// account.unfrozen, with ids derived from the account record's revision so
// that a retried publish is stored once (events.ReceiptsSettled, ...).
//
// # Errors
//
// ErrUnknownAccount, ErrAccountExists, ErrInvalidAccount, ErrInvalidBatch,
// ErrInsufficientFunds (Hold), ErrInvalidAmount (TopUp),
// ErrInvalidCharge, ErrClosed; a *RejectedError listing *ItemError values that wrap
// ErrWrongAccount or the payment sentinels (payment.ErrBadSignature,
// ErrUnknownGateway, ErrExpired, ErrWrongNode, ErrWrongSession,
// ErrOverBudget, ErrMalformed); events.ErrConflict under extreme
// contention.
package ledger
