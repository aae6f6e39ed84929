package ledger

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The statement stream: an ordered, durable history of what changed each
// account's balance, one message per applied change.
const (
	StatementStream  = "VERITY_LEDGER"
	StatementSubject = "verity.ledger" // + "." + hex(account) + "." + entry type
)

// Statement entry types.
const (
	EntryCreate = "create" // the account was created
	EntryTopUp  = "topup"  // bytes credited (the faucet, or a payment)
	EntrySettle = "settle" // a node's settlement batch debited it
	EntryCharge = "charge" // a gateway's metering batch debited it
)

// StatementEntry is one line of an account's statement.
type StatementEntry struct {
	Time     time.Time         `json:"time"`
	Type     string            `json:"type"`              // Entry*
	Bytes    uint64            `json:"bytes"`             // credited (create, topup) or debited
	Node     string            `json:"node,omitempty"`    // settle: the node paid
	Gateway  string            `json:"gateway,omitempty"` // charge: the gateway that served
	Sites    map[string]uint64 `json:"sites,omitempty"`   // settle, charge: Bytes by site
	Balance  int64             `json:"balance"`           // after the change
	Revision uint64            `json:"revision"`          // the account record's revision after it
	Account  string            `json:"account"`
}

// StatementQuery selects statement entries.
type StatementQuery struct {
	// Since: only entries at or after it. Zero: all that are kept.
	Since time.Time
	// Type: only entries of this type. Empty: all.
	Type string
	// Limit keeps the newest Limit entries. Default 1000.
	Limit int
}

func statementSubject(account, typ string) string {
	return StatementSubject + "." + hex.EncodeToString([]byte(account)) + "." + typ
}

// openStatement creates or updates the statement stream.
func (l *Ledger) openStatement(ctx context.Context) error {
	_, err := l.bus.JetStream().CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              StatementStream,
		Subjects:          []string{StatementSubject + ".>"},
		Storage:           jetstream.FileStorage,
		Replicas:          l.cfg.Replicas,
		MaxAge:            l.cfg.StatementMaxAge,
		MaxMsgsPerSubject: int64(l.cfg.StatementDepth),
		Duplicates:        2 * time.Minute,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("ledger: stream %s: %w", StatementStream, err)
	}
	return nil
}

// record appends e to account's statement. Its message id is derived from
// the type and the account revision that caused it, so a retried publish is
// stored once. The account record is the truth: a failed publish (or a
// crash between the write and the publish) leaves a gap in the statement,
// visible as a jump in Revision, and is logged.
func (l *Ledger) record(ctx context.Context, account string, e StatementEntry) {
	e.Account = account
	if e.Time.IsZero() {
		e.Time = l.cfg.Now().UTC()
	}
	b, err := json.Marshal(e)
	if err == nil {
		id := fmt.Sprintf("%s/%s/%d", e.Type, account, e.Revision)
		_, err = l.bus.JetStream().Publish(ctx, statementSubject(account, e.Type), b, jetstream.WithMsgID(id))
	}
	if err != nil {
		l.log.Warn("statement entry not recorded", "account", account, "type", e.Type, "revision", e.Revision, "err", err)
	}
}

// Statement returns an account's statement entries, oldest first: the
// newest q.Limit of those kept (StatementDepth per type, StatementMaxAge)
// that match q.
func (l *Ledger) Statement(ctx context.Context, account string, q StatementQuery) ([]StatementEntry, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if _, err := l.Account(ctx, account); err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	typ := q.Type
	if typ == "" {
		typ = "*"
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{statementSubject(account, typ)}}
	if !q.Since.IsZero() {
		cfg.DeliverPolicy = jetstream.DeliverByStartTimePolicy
		since := q.Since
		cfg.OptStartTime = &since
	}
	cons, err := l.bus.JetStream().OrderedConsumer(ctx, StatementStream, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: statement %s: %w", account, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: statement %s: %w", account, err)
	}
	pending := info.NumPending
	out := make([]StatementEntry, 0, min(pending, 2*uint64(q.Limit)))
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("ledger: statement %s: %w", account, err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var e StatementEntry
			if json.Unmarshal(m.Data(), &e) == nil {
				if len(out) == 2*q.Limit {
					// Keep the newest Limit; shifting at every entry
					// would cost Limit per entry read.
					out = append(out[:0], out[q.Limit:]...)
				}
				out = append(out, e)
			}
			md, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("ledger: statement %s: %w", account, err)
			}
			pending = md.NumPending
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("ledger: statement %s: %w", account, err)
		}
		if got == 0 {
			break
		}
	}
	return out[max(0, len(out)-q.Limit):], nil
}
