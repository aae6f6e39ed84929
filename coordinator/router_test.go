package coordinator_test

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/verity-cdn/verity/coordinator"
	"github.com/verity-cdn/verity/internal/asn"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

func syntheticTable() *asn.Table {
	t := asn.New()
	t.Insert(netip.MustParsePrefix("192.0.2.0/24"), 64496, "NL")
	t.Insert(netip.MustParsePrefix("192.0.2.128/25"), 64501, "BE") // more specific
	t.Insert(netip.MustParsePrefix("198.51.100.0/24"), 64497, "DE")
	t.Insert(netip.MustParsePrefix("203.0.113.0/24"), 64499, "US")
	t.Insert(netip.MustParsePrefix("2001:db8::/32"), 64496, "NL")
	t.Insert(netip.MustParsePrefix("2001:db8:1::/48"), 64497, "DE")
	return t
}

func names(cs []coordinator.Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Node)
	}
	return out
}

func TestRouterRank(t *testing.T) {
	r := coordinator.NewRouter(coordinator.RouterConfig{Table: syntheticTable()})
	cands := []coordinator.Candidate{
		{Node: "us-idle", Addr: netip.MustParseAddr("203.0.113.5"), Region: "US"},
		{Node: "de-busy", Addr: netip.MustParseAddr("198.51.100.7"), Region: "DE", Load: 0.9},
		{Node: "de-idle", Addr: netip.MustParseAddr("198.51.100.8"), Region: "DE"},
		{Node: "nl-v6", Addr: netip.MustParseAddr("2001:db8::10"), Region: "NL", Load: 0.5},
		{Node: "be", Addr: netip.MustParseAddr("192.0.2.200"), Region: "BE"},
		{Node: "de-region-other-asn", Addr: netip.MustParseAddr("203.0.113.9"), Region: "de"},
	}
	orig := slices.Clone(cands)
	cases := []struct {
		client, region string
		want           []string
	}{
		// Same ASN (64497) first, idle before busy; then region DE
		// (case-insensitive); then the rest by cost.
		{"198.51.100.99", "", []string{"de-idle", "de-busy", "de-region-other-asn", "be", "us-idle", "nl-v6"}},
		// IPv6 client in 2001:db8:1::/48 is AS64497 too.
		{"2001:db8:1::77", "", []string{"de-idle", "de-busy", "de-region-other-asn", "be", "us-idle", "nl-v6"}},
		// IPv6 client in AS64496 (NL): the v6 NL node first despite its load.
		{"2001:db8:5::1", "", []string{"nl-v6", "be", "de-idle", "de-region-other-asn", "us-idle", "de-busy"}},
		// The /25 is a different ASN than its covering /24: only "be" matches.
		{"192.0.2.130", "", []string{"be", "de-idle", "de-region-other-asn", "us-idle", "nl-v6", "de-busy"}},
		// IPv4-mapped address = the IPv4 one; within the ASN, the client's
		// country (US) is the region that matches.
		{"::ffff:203.0.113.77", "", []string{"us-idle", "de-region-other-asn", "be", "de-idle", "nl-v6", "de-busy"}},
		// Unknown network, explicit region.
		{"100.64.0.1", "DE", []string{"de-idle", "de-region-other-asn", "de-busy", "be", "us-idle", "nl-v6"}},
		// Unknown network, no region: by cost only.
		{"100.64.0.1", "", []string{"be", "de-idle", "de-region-other-asn", "us-idle", "nl-v6", "de-busy"}},
	}
	for _, c := range cases {
		got := names(r.Rank(netip.MustParseAddr(c.client), c.region, cands))
		if !slices.Equal(got, c.want) {
			t.Errorf("Rank(%s, %q) = %v, want %v", c.client, c.region, got, c.want)
		}
	}
	if !slices.Equal(cands, orig) {
		t.Error("Rank modified its input")
	}
}

func TestRouterRTTSamples(t *testing.T) {
	r := coordinator.NewRouter(coordinator.RouterConfig{Table: syntheticTable()})
	cands := []coordinator.Candidate{
		{Node: "a", Addr: netip.MustParseAddr("203.0.113.5")},
		{Node: "b", Addr: netip.MustParseAddr("203.0.113.6")},
		{Node: "c", Addr: netip.MustParseAddr("203.0.113.7"), RTT: 30 * time.Millisecond},
	}
	client := netip.MustParseAddr("198.51.100.1")
	if got := names(r.Rank(client, "", cands)); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("no samples: %v", got)
	}
	// Clients of AS64497 report that b is fast and a is slow; samples from
	// any address of the ASN count for the whole ASN.
	for range 8 {
		r.ReportRTT(netip.MustParseAddr("198.51.100.2"), "b", 10*time.Millisecond)
		r.ReportRTT(netip.MustParseAddr("198.51.100.3"), "a", 200*time.Millisecond)
	}
	if got := names(r.Rank(client, "", cands)); !slices.Equal(got, []string{"b", "c", "a"}) {
		t.Fatalf("with samples: %v", got)
	}
	// Another network has no samples.
	if got := names(r.Rank(netip.MustParseAddr("192.0.2.1"), "", cands)); !slices.Equal(got, []string{"c", "a", "b"}) {
		t.Fatalf("other network: %v", got)
	}
	// Unknown networks are grouped by /24 (IPv4) or /48 (IPv6).
	r.ReportRTT(netip.MustParseAddr("100.64.1.1"), "a", time.Millisecond)
	if d, ok := r.RTT(netip.MustParseAddr("100.64.1.200"), "a"); !ok || d != time.Millisecond {
		t.Fatalf("same /24: %v %v", d, ok)
	}
	if _, ok := r.RTT(netip.MustParseAddr("100.64.2.1"), "a"); ok {
		t.Fatal("other /24 shares samples")
	}
	r.ReportRTT(netip.MustParseAddr("2001:db9:0:1::1"), "a", time.Millisecond)
	if _, ok := r.RTT(netip.MustParseAddr("2001:db9:0:2::1"), "a"); !ok {
		t.Fatal("same /48 does not share samples")
	}
	// Nonsense samples are ignored.
	r.ReportRTT(client, "z", -time.Second)
	r.ReportRTT(client, "z", time.Hour)
	if _, ok := r.RTT(client, "z"); ok {
		t.Fatal("bad sample kept")
	}
}

func TestNodeStateCandidate(t *testing.T) {
	k := newKey(t)
	s := coordinator.NodeState{Record: signedRecord(t, k, 4001), Addr: "198.51.100.4", Status: nodeproto.Heartbeat{Region: "DE", Load: 0.5}}
	c := s.Candidate()
	if c.Node != k.id || c.Addr != netip.MustParseAddr("127.0.0.1") || c.Region != "DE" || c.Load != 0.5 {
		t.Fatalf("candidate %+v", c)
	}
	s.Record.Record.WebTransport, s.Record.Record.HTTP = "https://node.example:4433/", "http://node.example:4001"
	if c := s.Candidate(); c.Addr != netip.MustParseAddr("198.51.100.4") {
		t.Fatalf("fallback address %v", c.Addr)
	}
}

// BenchmarkRoute ranks 16 candidates for random clients against a
// synthetic table of 1 M prefixes (900 k IPv4, 100 k IPv6).
func BenchmarkRoute(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	table := asn.New()
	var v4 []netip.Prefix
	for table.Len() < 900_000 {
		bits := 16 + rng.IntN(9) // /16 … /24
		a := netip.AddrFrom4([4]byte{byte(1 + rng.IntN(222)), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())})
		p := netip.PrefixFrom(a, bits).Masked()
		table.Insert(p, uint32(1+rng.IntN(70_000)), "")
		v4 = append(v4, p)
	}
	for table.Len() < 1_000_000 {
		var a [16]byte
		a[0], a[1] = 0x20, 0x01
		for i := 2; i < 8; i++ {
			a[i] = byte(rng.Uint32())
		}
		table.Insert(netip.PrefixFrom(netip.AddrFrom16(a), 32+rng.IntN(17)).Masked(), uint32(1+rng.IntN(70_000)), "")
	}
	r := coordinator.NewRouter(coordinator.RouterConfig{Table: table})
	regions := []string{"NL", "DE", "US", "FR"}
	cands := make([]coordinator.Candidate, 16)
	for i := range cands {
		cands[i] = coordinator.Candidate{
			Node:   "n" + string(rune('a'+i)),
			Addr:   v4[rng.IntN(len(v4))].Addr(),
			Region: regions[i%len(regions)],
			Load:   rng.Float64(),
		}
	}
	clients := make([]netip.Addr, 4096)
	for i := range clients {
		clients[i] = v4[rng.IntN(len(v4))].Addr().Next()
		r.ReportRTT(clients[i], cands[rng.IntN(len(cands))].Node, time.Duration(5+rng.IntN(100))*time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r.Rank(clients[i&4095], "", cands)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}

// NodesFor ranks the live nodes of the registry for the client's address.
func TestNodesForRanksLiveNodes(t *testing.T) {
	router := coordinator.NewRouter(coordinator.RouterConfig{Table: syntheticTable()})
	e := newEnv(t, func(c *coordinator.Config) { c.Router = router })
	at := func(host string) (nodeKey, noderecord.Signed) {
		k := newKey(t)
		now := time.Now()
		rec, err := noderecord.Sign(noderecord.Record{
			HTTP:         "http://" + host + ":4001",
			WebTransport: "https://" + host + ":4433/verity/v1",
			CertHashes:   []noderecord.CertHash{{SHA256: make([]byte, 32), NotBefore: now.Add(-time.Hour), NotAfter: now.Add(13 * 24 * time.Hour)}},
			Issued:       now.Add(-time.Minute),
			Expires:      now.Add(time.Hour),
		}, k.priv)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := node.NewCoordClient(node.CoordClientConfig{
			URL: e.srv.url, Key: k.priv, OperatorToken: operatorToken(e.bus),
			Record:     func() (noderecord.Signed, error) { return rec, nil },
			MinBackoff: 10 * time.Millisecond,
			Logger:     testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return k, rec
	}
	de, _ := at("198.51.100.7")
	us, _ := at("203.0.113.5")
	eventually(t, "both nodes live", func() bool {
		live, _ := e.coord.LiveNodes(t.Context())
		return len(live) == 2
	})
	if e.coord.Router() != router {
		t.Fatal("Router() is not the configured router")
	}
	for client, first := range map[string]string{"203.0.113.77": us.id, "198.51.100.1": de.id} {
		recs, err := e.coord.NodesFor(t.Context(), netip.MustParseAddr(client))
		if err != nil || len(recs) != 2 || recs[0].Record.NodeID != first {
			t.Fatalf("NodesFor(%s) first %v, want %s: %v", client, recs, first, err)
		}
	}
}
