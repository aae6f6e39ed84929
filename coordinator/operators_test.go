package coordinator_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// A node key made on the spot does not join without an operator
// credential issued by the gateway's admin: no credential, a malformed
// one, a made-up secret for a real operator and a credential of an
// operator that does not exist are all refused with
// StatusOperatorRefused, and the node is never listed. A node client
// without a credential reports ErrOperatorRefused.
func TestJoinWithoutCredentialRefused(t *testing.T) {
	e := newEnv(t, nil)
	good := operatorToken(e.bus)
	name, _ := coordinator.ParseOperatorToken(good)
	forged := coordinator.OperatorTokenPrefix + name + "." + strings.Repeat("A", 43)
	other := coordinator.OperatorTokenPrefix + "nobody." + strings.Repeat("A", 43)
	for _, tc := range []struct{ name, token string }{
		{"none", ""},
		{"malformed", "vdt_not-an-operator-token"},
		{"forged secret", forged},
		{"unknown operator", other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKey(t)
			r := dialRaw(t, e.wsURL())
			j := joinFor(r.ch, k, signedRecord(t, k, 4001))
			j.Join.Operator = tc.token
			r.send(j)
			ce := r.closed()
			if ce.Code != coordinator.StatusOperatorRefused || !strings.Contains(ce.Reason, "operator") {
				t.Fatalf("close = %d %q, want %d naming the operator credential", ce.Code, ce.Reason, coordinator.StatusOperatorRefused)
			}
			if _, ok := stateOf(t, e.coord, k.id); ok || hasNode(t, e.coord, k.id) {
				t.Fatal("a refused node was recorded")
			}
		})
	}

	k := newKey(t)
	rec := signedRecord(t, k, 4001)
	nc, err := node.NewCoordClient(node.CoordClientConfig{
		URL: e.srv.url, Key: k.priv,
		Record:     func() (noderecord.Signed, error) { return rec, nil },
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	eventually(t, "the client told why it was refused", func() bool {
		return errors.Is(nc.State().LastErr, node.ErrOperatorRefused)
	})
	if nc.State().Joins != 0 || hasNode(t, e.coord, k.id) {
		t.Fatal("a node without a credential joined")
	}

	// The real credential joins.
	r := dialRaw(t, e.wsURL())
	r.send(joinFor(r.ch, k, rec))
	if m := r.read(); m.Type != nodeproto.MsgWelcome {
		t.Fatalf("with the credential: %+v, want welcome", m)
	}
}

// Revoking an operator closes its nodes' sessions on every coordinator
// of the bus, declares them lost, and refuses their next join; another
// operator's nodes are untouched.
func TestRevokeDisconnectsOperatorsNodes(t *testing.T) {
	e := newEnv(t, nil)
	other := newCoordinator(t, e.bus, nil)
	srv2 := startServer(t)
	srv2.cur.Store(other)
	tokA, err := e.coord.CreateOperator(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := e.coord.CreateOperator(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.coord.CreateOperator(ctxT(t), "alice"); !errors.Is(err, coordinator.ErrOperatorExists) {
		t.Fatalf("second alice: %v, want ErrOperatorExists", err)
	}
	join := func(url, tok string, port int) (nodeKey, *node.CoordClient) {
		k := newKey(t)
		rec := signedRecord(t, k, port)
		nc, err := node.NewCoordClient(node.CoordClientConfig{
			URL: url, Key: k.priv, OperatorToken: tok,
			Record:     func() (noderecord.Signed, error) { return rec, nil },
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return k, nc
	}
	a1, nc1 := join(e.srv.url, tokA, 4001)
	a2, nc2 := join(srv2.url, tokA, 4101) // on the other coordinator
	b, ncB := join(e.srv.url, tokB, 4201)
	eventually(t, "all three nodes listed", func() bool {
		return hasNode(t, e.coord, a1.id) && hasNode(t, e.coord, a2.id) && hasNode(t, e.coord, b.id)
	})
	if s, _ := stateOf(t, e.coord, a2.id); s.Operator != "alice" {
		t.Fatalf("operator recorded = %q, want alice", s.Operator)
	}
	ops, err := e.coord.Operators(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 || ops[0].Name != "alice" || ops[0].Nodes != 2 {
		t.Fatalf("operators = %+v, want alice (2 nodes), bob, test", ops)
	}

	if err := e.coord.RevokeOperator(ctxT(t), "alice"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "alice's nodes lost on both coordinators", func() bool {
		s1, _ := stateOf(t, e.coord, a1.id)
		s2, _ := stateOf(t, e.coord, a2.id)
		return s1.State == coordinator.StateLost && s2.State == coordinator.StateLost &&
			!hasNode(t, other, a1.id) && !hasNode(t, other, a2.id)
	})
	eventually(t, "alice's clients told they were refused", func() bool {
		return errors.Is(nc1.State().LastErr, node.ErrOperatorRefused) && errors.Is(nc2.State().LastErr, node.ErrOperatorRefused)
	})
	if s, _ := stateOf(t, e.coord, a1.id); s.Reason != "operator revoked" {
		t.Fatalf("lost reason = %q", s.Reason)
	}
	r := dialRaw(t, e.wsURL())
	j := joinFor(r.ch, a1, signedRecord(t, a1, 4001))
	j.Join.Operator = tokA
	r.send(j)
	if ce := r.closed(); ce.Code != coordinator.StatusOperatorRefused {
		t.Fatalf("rejoin with a revoked credential: close %d %q", ce.Code, ce.Reason)
	}
	if !hasNode(t, e.coord, b.id) || !ncB.State().Joined {
		t.Fatal("bob's node was disconnected")
	}
	if err := e.coord.RevokeOperator(ctxT(t), "alice"); !errors.Is(err, coordinator.ErrUnknownOperator) {
		t.Fatalf("revoking twice: %v, want ErrUnknownOperator", err)
	}
}
