package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/verity-cdn/verity/internal/secret"
)

// Operator credentials. A node joins only with the credential of an
// operator the gateway's admin created: "vop_" NAME "." SECRET, SECRET 32
// random bytes in base64url. The operators bucket (events.BucketOperators,
// key NAME) keeps SHA-256(salt ‖ credential) with a per-operator salt; a
// revoked operator's key is deleted, and every coordinator closes the
// sessions of that operator's nodes as it sees the deletion.
const OperatorTokenPrefix = "vop_"

// OperatorRecord is an operator's value in the operators bucket.
type OperatorRecord struct {
	Name    string    `json:"name"`
	Salt    []byte    `json:"salt"` // 16 random bytes
	Hash    []byte    `json:"hash"` // SHA-256(salt ‖ credential)
	Created time.Time `json:"created"`
}

// ValidOperatorName reports whether name can name an operator: 1 to 63 of
// a-z, 0-9, '-' and '_'.
func ValidOperatorName(name string) bool {
	if len(name) == 0 || len(name) > 63 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// ParseOperatorToken splits a credential into the operator's name and
// reports whether it has the credential's form.
func ParseOperatorToken(tok string) (name string, ok bool) {
	rest, ok := strings.CutPrefix(tok, OperatorTokenPrefix)
	if !ok {
		return "", false
	}
	name, secret, ok := strings.Cut(rest, ".")
	if !ok || !ValidOperatorName(name) || len(secret) < 43 {
		return "", false
	}
	return name, true
}

// CreateOperator registers operator name and returns its credential, which
// is shown only this once. It fails with ErrOperatorExists when the name
// is taken and ErrOperatorName for an invalid name.
func (c *Coordinator) CreateOperator(ctx context.Context, name string) (string, error) {
	if !ValidOperatorName(name) {
		return "", fmt.Errorf("%w: %q: use 1 to 63 of a-z, 0-9, '-' and '_'", ErrOperatorName, clip(name))
	}
	tok := secret.New(OperatorTokenPrefix + name + ".")
	h := secret.Hash(tok)
	rec := OperatorRecord{Name: name, Salt: h.Salt, Hash: h.Hash, Created: c.cfg.Now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return "", err
	}
	if _, err := c.okv.Create(ctx, name, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return "", fmt.Errorf("%w: %q", ErrOperatorExists, name)
		}
		return "", fmt.Errorf("coordinator: store operator: %w", err)
	}
	c.mu.Lock()
	c.operators[name] = rec
	c.mu.Unlock()
	c.log.Info("operator created", "operator", name)
	return tok, nil
}

// RevokeOperator deletes operator name's credential: its nodes can no
// longer join, and every coordinator sharing the bus closes their
// sessions (StatusOperatorRefused) and declares them lost. It fails with
// ErrUnknownOperator for a name that has no credential.
func (c *Coordinator) RevokeOperator(ctx context.Context, name string) error {
	if _, err := c.okv.Get(ctx, name); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %q", ErrUnknownOperator, clip(name))
		}
		return fmt.Errorf("coordinator: read operator: %w", err)
	}
	if err := c.okv.Delete(ctx, name); err != nil {
		return fmt.Errorf("coordinator: revoke operator: %w", err)
	}
	c.log.Info("operator revoked", "operator", name)
	c.revoked(name)
	return nil
}

// OperatorInfo is an operator as listed: its name, when its credential was
// created and how many of its nodes are live now.
type OperatorInfo struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Nodes   int       `json:"nodes"`
}

// Operators lists the operators with a credential, by name.
func (c *Coordinator) Operators(ctx context.Context) ([]OperatorInfo, error) {
	live, err := c.LiveNodes(ctx)
	if err != nil {
		return nil, err
	}
	count := map[string]int{}
	for _, s := range live {
		count[s.Operator]++
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]OperatorInfo, 0, len(c.operators))
	for _, name := range slices.Sorted(maps.Keys(c.operators)) {
		out = append(out, OperatorInfo{Name: name, Created: c.operators[name].Created, Nodes: count[name]})
	}
	return out, nil
}

// VerifyOperator returns the operator whose credential tok is; the error
// wraps ErrOperator and says why not (none, malformed, unknown or revoked
// operator, wrong secret).
func (c *Coordinator) VerifyOperator(tok string) (string, error) {
	if tok == "" {
		return "", fmt.Errorf("%w: no operator credential; ask the gateway's admin for one (verity operators create NAME) and start the node with --operator-token-file", ErrOperator)
	}
	name, ok := ParseOperatorToken(tok)
	if !ok {
		return "", fmt.Errorf("%w: malformed operator credential (want %sNAME.SECRET)", ErrOperator, OperatorTokenPrefix)
	}
	c.mu.Lock()
	rec, known := c.operators[name]
	c.mu.Unlock()
	if !known {
		// Hash anyway, so an unknown name costs what a wrong secret does.
		secret.Burn(tok)
		return "", fmt.Errorf("%w: operator %q has no credential (revoked or never created)", ErrOperator, name)
	}
	if !(secret.Hashed{Salt: rec.Salt, Hash: rec.Hash}).Matches(tok) {
		return "", fmt.Errorf("%w: wrong credential for operator %q", ErrOperator, name)
	}
	return name, nil
}

// applyOperator mirrors one update of the operators bucket; a deletion
// revokes.
func (c *Coordinator) applyOperator(e jetstream.KeyValueEntry) {
	if e.Operation() != jetstream.KeyValuePut {
		c.revoked(e.Key())
		return
	}
	var rec OperatorRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		c.log.Warn("bad operator in KV", "operator", e.Key(), "err", err)
		return
	}
	c.mu.Lock()
	c.operators[e.Key()] = rec
	c.mu.Unlock()
}

// revoked forgets operator name and ends the local sessions of its nodes,
// which are declared lost.
func (c *Coordinator) revoked(name string) {
	c.mu.Lock()
	delete(c.operators, name)
	var ended []*nodeConn
	for _, nc := range c.conns {
		if nc.operator == name {
			ended = append(ended, nc)
		}
	}
	c.mu.Unlock()
	for _, nc := range ended {
		nc.stop(fmt.Errorf("%w: operator %q was revoked", ErrOperator, name))
		c.markLost(c.ctx, nc.node, nc.session, "operator revoked", false)
	}
}
