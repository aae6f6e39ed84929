package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/payment"
)

// Charge is a gateway's metering batch for one account: the bytes it
// served on its HTTPS path since its previous batch, by site.
type Charge struct {
	Account string
	// Gateway names the gateway (its events name).
	Gateway string
	// Seq numbers the gateway's batches for this account; it must grow
	// from batch to batch. A batch whose Seq is not above the last one
	// applied for this gateway and account is a replay and applies
	// nothing, so a gateway retries a failed batch with the same Seq.
	Seq uint64
	// Sites: bytes served, by site name.
	Sites map[string]uint64
}

// ChargeResult is the outcome of ApplyCharge.
type ChargeResult struct {
	Account  string `json:"account"`
	Applied  uint64 `json:"applied"` // bytes debited by this call; 0 for a replay
	Balance  int64  `json:"balance"`
	Frozen   bool   `json:"frozen"`
	Revision uint64 `json:"revision"`
}

// ApplyCharge debits a gateway's metering batch from the account, once:
// in one compare-and-set with the gateway's last applied Seq. The bytes
// are already served, so unlike a settlement no overdraft bound applies.
// It emits gateway.charged, and account.frozen when the account crossed
// its threshold.
func (l *Ledger) ApplyCharge(ctx context.Context, c Charge) (ChargeResult, error) {
	res := ChargeResult{Account: c.Account}
	if err := l.check(); err != nil {
		return res, err
	}
	if !payment.ValidAccount(c.Account) {
		return res, fmt.Errorf("%w: %q", ErrInvalidAccount, c.Account)
	}
	var total uint64
	for _, n := range c.Sites {
		if n > MaxAmount-min(total, MaxAmount) {
			total = MaxAmount + 1 // refused below, before the sum can wrap
			break
		}
		total += n
	}
	if c.Gateway == "" || c.Seq == 0 || total == 0 || total > MaxAmount {
		return res, fmt.Errorf("%w: gateway %q, seq %d, %d bytes", ErrInvalidCharge, c.Gateway, c.Seq, total)
	}
	var (
		out   *accountRecord
		froze bool
	)
	rev, err := events.Update(ctx, l.kv, AccountKey(c.Account), func(old []byte) ([]byte, error) {
		out, froze = nil, false
		if old == nil {
			return nil, fmt.Errorf("%w: %q", ErrUnknownAccount, c.Account)
		}
		rec, err := decodeAccount(old)
		if err != nil {
			return nil, err
		}
		if rec.ChargeSeq[c.Gateway] >= c.Seq {
			return nil, events.ErrNoChange
		}
		rec.ChargeSeq[c.Gateway] = c.Seq
		for site, n := range c.Sites {
			rec.site(site).Gateway += n
		}
		rec.Charged += total
		rec.Balance -= int64(total)
		if !rec.Frozen && rec.Balance < rec.FreezeBelow {
			rec.Frozen, froze = true, true
		}
		out = rec
		return json.Marshal(rec)
	})
	if err != nil {
		return res, err
	}
	if out == nil { // a replay
		a, err := l.Account(ctx, c.Account)
		if err != nil {
			return res, err
		}
		res.Balance, res.Frozen, res.Revision = a.Balance, a.Frozen, a.Revision
		return res, nil
	}
	res.Applied, res.Balance, res.Frozen, res.Revision = total, out.Balance, out.Frozen, rev
	sites := maps.Clone(c.Sites)
	l.emit(ctx, events.TypeGatewayCharged, c.Account, rev, events.GatewayCharged{
		Account: c.Account, Gateway: c.Gateway, Bytes: total, Sites: sites, Balance: out.Balance, Revision: rev})
	l.record(ctx, c.Account, StatementEntry{Type: EntryCharge, Bytes: total, Gateway: c.Gateway,
		Sites: sites, Balance: out.Balance, Revision: rev})
	if froze {
		l.emit(ctx, events.TypeAccountFrozen, c.Account, rev, events.AccountFrozen{
			Account: c.Account, Balance: out.Balance, Threshold: out.FreezeBelow, Revision: rev})
	}
	return res, nil
}
