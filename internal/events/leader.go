package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Leader reads. A KV bucket's Get is a "direct get": on a replicated bus
// (Config.Replicas 3) any replica of the bucket's stream answers it, and
// its ListKeys runs a consumer placed on any replica, so either may miss
// a write acknowledged a moment ago by the stream's leader. Where a
// decision must see every write acknowledged before it (the collector's
// last read of what references a root, a store's Keep that must find the
// collector's mark), the bucket is read through a LeaderKV instead: the
// JetStream API's STREAM.MSG.GET, which only the stream's leader answers
// (a replica answers nothing; with no leader, it is an error), and which
// a leader answers from what it applied, every acknowledged write
// included. What it does not cover: a leader cut off from the others
// that has not yet noticed that another was elected (NATS has no
// read-index) answers from its own state until its election timeout
// (seconds) ends its term.

// LeaderKV is a KV bucket whose reads (Get, ListKeys) are answered by its
// stream's leader; every other method is the bucket's own. It can be
// passed wherever a jetstream.KeyValue is, e.g. to Update.
type LeaderKV struct {
	jetstream.KeyValue
	nc      *nats.Conn
	get     string // the STREAM.MSG.GET subject of the bucket's stream
	prefix  string // of the bucket's subjects, "$KV.<bucket>."
	timeout time.Duration
}

// LeaderKV returns bucket name read from its stream's leader.
func (b *Bus) LeaderKV(name string) (*LeaderKV, error) {
	kv, err := b.KV(name)
	if err != nil {
		return nil, err
	}
	opts := b.js.Options()
	api := opts.APIPrefix
	if api == "" {
		api = jetstream.DefaultAPIPrefix
	}
	if !strings.HasSuffix(api, ".") {
		api += "."
	}
	return &LeaderKV{
		KeyValue: kv, nc: b.nc,
		get:     api + "STREAM.MSG.GET.KV_" + kv.Bucket(),
		prefix:  "$KV." + kv.Bucket() + ".",
		timeout: max(opts.DefaultTimeout, 5*time.Second),
	}, nil
}

// errLeaderAnswer: the leader's answer could not be read.
var errLeaderAnswer = errors.New("events: leader read: malformed answer")

type msgGetRequest struct {
	Seq     uint64 `json:"seq,omitempty"`
	LastFor string `json:"last_by_subj,omitempty"`
	NextFor string `json:"next_by_subj,omitempty"`
}

type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error,omitempty"`
	Message *struct {
		Subject  string    `json:"subject"`
		Sequence uint64    `json:"seq"`
		Header   []byte    `json:"hdrs,omitempty"`
		Data     []byte    `json:"data,omitempty"`
		Time     time.Time `json:"time"`
	} `json:"message,omitempty"`
}

// msgGet asks the leader for one message; jetstream.ErrMsgNotFound when
// there is none.
func (l *LeaderKV) msgGet(ctx context.Context, req msgGetRequest) (*leaderEntry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	msg, err := l.nc.RequestWithContext(ctx, l.get, body)
	if err != nil {
		return nil, fmt.Errorf("events: leader read of %s: %w", l.Bucket(), err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("%w: %w", errLeaderAnswer, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, fmt.Errorf("events: leader read of %s: %w", l.Bucket(), resp.Error)
	}
	m := resp.Message
	if m == nil || !strings.HasPrefix(m.Subject, l.prefix) {
		return nil, errLeaderAnswer
	}
	e := &leaderEntry{bucket: l.Bucket(), key: strings.TrimPrefix(m.Subject, l.prefix), value: m.Data, rev: m.Sequence, created: m.Time, op: jetstream.KeyValuePut}
	if len(m.Header) > 0 {
		hdr, err := nats.DecodeHeadersMsg(m.Header)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errLeaderAnswer, err)
		}
		switch {
		case hdr.Get("KV-Operation") == "DEL":
			e.op = jetstream.KeyValueDelete
		case hdr.Get("KV-Operation") == "PURGE", hdr.Get(jetstream.MarkerReasonHeader) != "":
			e.op = jetstream.KeyValuePurge
		}
	}
	return e, nil
}

// Get reads key's latest revision from the leader:
// jetstream.ErrKeyNotFound when it has none or it was deleted.
func (l *LeaderKV) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := l.msgGet(ctx, msgGetRequest{LastFor: l.prefix + key})
	if errors.Is(err, jetstream.ErrMsgNotFound) || (err == nil && e.op != jetstream.KeyValuePut) {
		return nil, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// ListKeys lists the bucket's keys as the leader holds them: every key
// written and not deleted before the call is listed. It walks the
// stream's messages in order (one request each), so it is meant for
// buckets that keep one revision per key.
func (l *LeaderKV) ListKeys(ctx context.Context, _ ...jetstream.WatchOpt) (jetstream.KeyLister, error) {
	live := map[string]bool{}
	var order []string
	for seq := uint64(1); ; {
		e, err := l.msgGet(ctx, msgGetRequest{Seq: seq, NextFor: l.prefix + ">"})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		if _, seen := live[e.key]; !seen {
			order = append(order, e.key)
		}
		live[e.key] = e.op == jetstream.KeyValuePut // a later message of the key decides
		seq = e.rev + 1
	}
	keys := make(chan string, len(order))
	for _, k := range order {
		if live[k] {
			keys <- k
		}
	}
	close(keys)
	return keyList(keys), nil
}

type keyList <-chan string

func (k keyList) Keys() <-chan string { return k }
func (k keyList) Stop() error         { return nil }

type leaderEntry struct {
	bucket, key string
	value       []byte
	rev         uint64
	created     time.Time
	op          jetstream.KeyValueOp
}

func (e *leaderEntry) Bucket() string                  { return e.bucket }
func (e *leaderEntry) Key() string                     { return e.key }
func (e *leaderEntry) Value() []byte                   { return e.value }
func (e *leaderEntry) Revision() uint64                { return e.rev }
func (e *leaderEntry) Created() time.Time              { return e.created }
func (e *leaderEntry) Delta() uint64                   { return 0 }
func (e *leaderEntry) Operation() jetstream.KeyValueOp { return e.op }

var (
	_ jetstream.KeyValue      = (*LeaderKV)(nil)
	_ jetstream.KeyValueEntry = (*leaderEntry)(nil)
)
