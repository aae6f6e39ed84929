package coordinator

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/payment"
)

// BucketGateways is the KV bucket of gateway payment keys: key = hex of
// the payment.KeyID, value = a GatewayKeyRecord. Every gateway publishes
// its key there on start; coordinators (and through them nodes and the
// ledger) trust vouchers signed by any key in it.
const BucketGateways = "gateways"

// GatewayKeyRecord is one value of BucketGateways.
type GatewayKeyRecord struct {
	Gateway   string    `json:"gateway"`   // name of the gateway holding the key
	PublicKey []byte    `json:"publicKey"` // ed25519, base64 in JSON
	Published time.Time `json:"published"`
}

func gatewaysKV(ctx context.Context, bus *events.Bus) (jetstream.KeyValue, error) {
	kv, err := bus.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketGateways, History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: KV bucket %s: %w", BucketGateways, err)
	}
	return kv, nil
}

// PublishGatewayKey records a gateway's payment public key in shared state.
// It is idempotent.
func PublishGatewayKey(ctx context.Context, bus *events.Bus, gateway string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("coordinator: gateway key must be an ed25519 public key")
	}
	kv, err := gatewaysKV(ctx, bus)
	if err != nil {
		return err
	}
	id := payment.KeyIDOf(pub)
	b, err := json.Marshal(GatewayKeyRecord{Gateway: gateway, PublicKey: pub, Published: time.Now().UTC()})
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, hex.EncodeToString(id[:]), b)
	return err
}

// GatewayKeys is the set of gateway payment keys in BucketGateways, kept
// current by a watch. It implements payment.GatewayKeys. Safe for
// concurrent use.
type GatewayKeys struct {
	mu     sync.RWMutex
	set    payment.KeySet
	notify func()
}

var _ payment.GatewayKeys = (*GatewayKeys)(nil)

// GatewayKey implements payment.GatewayKeys.
func (g *GatewayKeys) GatewayKey(id payment.KeyID) (ed25519.PublicKey, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	p, ok := g.set[id]
	return p, ok
}

// List returns the public keys, ordered by key id.
func (g *GatewayKeys) List() [][]byte {
	g.mu.RLock()
	defer g.mu.RUnlock()
	ids := make([]string, 0, len(g.set))
	byID := make(map[string][]byte, len(g.set))
	for id, p := range g.set {
		s := hex.EncodeToString(id[:])
		ids = append(ids, s)
		byID[s] = p
	}
	sort.Strings(ids)
	out := make([][]byte, len(ids))
	for i, s := range ids {
		out[i] = byID[s]
	}
	return out
}

func (g *GatewayKeys) apply(e jetstream.KeyValueEntry) {
	b, err := hex.DecodeString(e.Key())
	if err != nil || len(b) != len(payment.KeyID{}) {
		return
	}
	var id payment.KeyID
	copy(id[:], b)
	g.mu.Lock()
	if e.Operation() != jetstream.KeyValuePut {
		delete(g.set, id)
	} else {
		var r GatewayKeyRecord
		if json.Unmarshal(e.Value(), &r) == nil && len(r.PublicKey) == ed25519.PublicKeySize &&
			payment.KeyIDOf(r.PublicKey) == id {
			g.set[id] = ed25519.PublicKey(r.PublicKey)
		}
	}
	notify := g.notify
	g.mu.Unlock()
	if notify != nil {
		notify()
	}
}
