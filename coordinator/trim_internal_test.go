package coordinator

import (
	"slices"
	"testing"
	"time"
)

// Which holders surplus drops, and when it drops none.
func TestSurplusChoice(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	pinned := func(min int) Holder { return Holder{State: HolderPinned, Since: at(min)} }
	// Every node joined at minute 0 but "back", which joined again at 50.
	joined := map[string]time.Time{"a": at(0), "b": at(0), "c": at(0), "d": at(0), "back": at(50)}
	for _, tc := range []struct {
		name string
		p    Placement
		near *Placement
		want []string
	}{
		{"no surplus", Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2)}}, nil, nil},
		{"the oldest audit goes", Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(3), "c": pinned(2)}}, nil, []string{"a"}},
		{"a copy that came back goes first, though audited last",
			Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2), "back": pinned(40)}}, nil, []string{"back"}},
		{"a copy checked since its node joined again is kept",
			Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2), "back": pinned(60)}}, nil, []string{"a"}},
		{"holders of the near root are kept first",
			Placement{Replicas: 2, Near: "n", Nodes: map[string]Holder{"a": pinned(1), "b": pinned(3), "c": pinned(2)}},
			&Placement{Nodes: map[string]Holder{"a": pinned(0), "c": {State: HolderPending}}}, []string{"b"}},
		{"a pin under way: nothing", Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2), "c": pinned(3), "d": {State: HolderPending}}}, nil, nil},
		{"an audit under way: nothing", Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2), "c": pinned(3), "d": {State: HolderAuditing}}}, nil, nil},
		{"a lost node's pending order is not under way",
			Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(2), "c": pinned(3), "lost": {State: HolderPending}}}, nil, []string{"a"}},
		{"lost and failed holders are not counted or dropped",
			Placement{Replicas: 2, Nodes: map[string]Holder{"a": pinned(1), "b": {State: HolderFailed}, "lost": pinned(9)}}, nil, nil},
		{"two surplus", Placement{Replicas: 1, Nodes: map[string]Holder{"a": pinned(1), "b": pinned(3), "c": pinned(2)}}, nil, []string{"c", "a"}},
		{"emptied for removal", Placement{Replicas: 0, Nodes: map[string]Holder{"a": pinned(1)}}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := surplus(tc.p, joined, tc.near); !slices.Equal(got, tc.want) {
				t.Fatalf("surplus = %v, want %v", got, tc.want)
			}
		})
	}
}
