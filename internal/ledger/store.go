package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
)

// ledgerStream is the stream under BucketLedger.
const ledgerStream = "KV_" + BucketLedger

// maxAtomicBatch is the most messages one atomic batch carries (the
// server's default limit is 1,000).
const maxAtomicBatch = 1000

// errConflict: a key of an atomic batch changed since it was read; the
// caller reads again and retries.
var errConflict = errors.New("ledger: concurrent change")

// openLedgerBucket creates BucketLedger and enables on its stream atomic
// batch publish and per-message TTLs.
func (l *Ledger) openLedgerBucket(ctx context.Context) error {
	js := l.bus.JetStream()
	// An existing bucket is used as is: updating it with a KV config
	// would try to turn its TTLs off, which the server refuses.
	kv, err := js.KeyValue(ctx, BucketLedger)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: BucketLedger, History: 1, Storage: jetstream.FileStorage, Replicas: l.cfg.Replicas,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, BucketLedger)
		}
	}
	if err != nil {
		return fmt.Errorf("ledger: KV bucket %s: %w", BucketLedger, err)
	}
	s, err := js.Stream(ctx, ledgerStream)
	if err != nil {
		return fmt.Errorf("ledger: stream %s: %w", ledgerStream, err)
	}
	cfg := s.CachedInfo().Config
	if !cfg.AllowAtomicPublish || !cfg.AllowMsgTTL {
		cfg.AllowAtomicPublish, cfg.AllowMsgTTL = true, true
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ledger: stream %s: atomic publish and TTLs: %w", ledgerStream, err)
		}
	}
	l.kv, l.stream = kv, s
	return nil
}

// readKey returns a key's value (nil when absent or deleted) and the
// sequence of the last message on its subject (0 when none), which is
// what an atomic batch expects to still be the last.
func (l *Ledger) readKey(ctx context.Context, key string) ([]byte, uint64, error) {
	m, err := l.stream.GetLastMsgForSubject(ctx, "$KV."+BucketLedger+"."+key)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("ledger: read %s: %w", key, err)
	}
	if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
		return nil, m.Sequence, nil
	}
	return m.Data, m.Sequence, nil
}

// write is one key of an atomic batch.
type write struct {
	key    string
	value  []byte
	expect uint64        // the subject's last sequence when read (0: none)
	ttl    time.Duration // per-message TTL, 0 for none
}

// commit writes ws in one atomic batch: all or none, and none when any
// key's last sequence is no longer its expect (errConflict). It returns
// the sequence of the last message, the batch's commit.
func (l *Ledger) commit(ctx context.Context, ws []write) (uint64, error) {
	if len(ws) == 0 || len(ws) > maxAtomicBatch {
		return 0, fmt.Errorf("ledger: atomic batch of %d writes", len(ws))
	}
	nc := l.bus.Conn()
	id := events.NewID()
	for i, w := range ws {
		m := nats.NewMsg("$KV." + BucketLedger + "." + w.key)
		m.Data = w.value
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		m.Header.Set("Nats-Expected-Last-Subject-Sequence", strconv.FormatUint(w.expect, 10))
		if w.ttl > 0 {
			m.Header.Set("Nats-TTL", strconv.FormatInt(int64(max(w.ttl/time.Second, 1)), 10)+"s")
		}
		if i < len(ws)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("ledger: atomic batch: %w", err)
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		dl, ok := ctx.Deadline()
		timeout := 10 * time.Second
		if ok {
			timeout = time.Until(dl)
		}
		resp, err := nc.RequestMsg(m, timeout)
		if err != nil {
			return 0, fmt.Errorf("ledger: atomic batch: %w", err)
		}
		var ack struct {
			Seq   uint64 `json:"seq"`
			Error *struct {
				Code        int    `json:"code"`
				ErrCode     int    `json:"err_code"`
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return 0, fmt.Errorf("ledger: atomic batch ack: %w", err)
		}
		if e := ack.Error; e != nil {
			switch e.ErrCode {
			case 10071, 10164: // wrong last sequence
				return 0, errConflict
			case 10176, 10210: // incomplete (a message dropped), too many in flight: retry
				return 0, errConflict
			}
			return 0, fmt.Errorf("ledger: atomic batch: %s (%d)", e.Description, e.ErrCode)
		}
		return ack.Seq, nil
	}
	return 0, nil
}
