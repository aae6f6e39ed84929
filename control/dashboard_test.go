package control

import (
	"crypto/ed25519"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
)

// TestDashboardMatchesSettlements: settlements applied with vouchers and
// receipts signed here show in the dashboard by site and node, and in each
// node's earnings, which a node reads with its own key.
func TestDashboardMatchesSettlements(t *testing.T) {
	tg, bus := accountsGateway(t, true)
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme","freezeBelow":1}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, `{"bytes":1073741824}`, http.StatusOK, nil)

	gwKey := sitetest.Key(200)
	settler, err := ledger.New(t.Context(), ledger.Config{Bus: bus, Keys: payment.NewKeySet(gwKey.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	defer settler.Close()
	nodeKeys := []ed25519.PrivateKey{sitetest.Key(31), sitetest.Key(32)}
	var nodes []payment.NodeKey
	for _, k := range nodeKeys {
		var n payment.NodeKey
		copy(n[:], k.Public().(ed25519.PublicKey))
		nodes = append(nodes, n)
	}
	const blk = payment.BlockSize
	// settle signs a session of site for each node's block count and
	// settles each node's receipt.
	settle := func(site string, seed byte, blocks ...int) {
		t.Helper()
		s, err := payment.NewSigner(payment.SignerConfig{Rand: constReader(seed)})
		if err != nil {
			t.Fatal(err)
		}
		v := payment.Voucher{Account: "acme", Site: site, Session: s.SessionKey(), Budget: 1 << 30, NodeCap: 1 << 30,
			Nodes: []payment.NodeTag{payment.TagOf(nodes[0]), payment.TagOf(nodes[1])}, Expires: time.Now().Add(time.Hour)}
		if err := v.Sign(gwKey); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVoucher(v); err != nil {
			t.Fatal(err)
		}
		enc, _ := v.MarshalBinary()
		for i, n := range blocks {
			var r payment.Receipt
			for range n {
				if r, _, err = s.Verified(nodes[i], blk); err != nil {
					t.Fatal(err)
				}
			}
			rb, _ := r.MarshalBinary()
			if _, err := settler.Settle(t.Context(), nodeproto.Batch{Node: nodes[i], Account: "acme", Items: []nodeproto.BatchItem{{Voucher: enc, Receipt: rb}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle("blog", 1, 3, 1)
	settle("shop", 2, 1, 2)
	settle("", 3, 2, 1)

	var d api.Dashboard
	tg.apiJSON(t, "GET", "/v1/accounts/acme/dashboard", testAdmin, "", http.StatusOK, &d)
	wantSites := map[string]api.SiteSpend{"blog": {Nodes: 4 * blk}, "shop": {Nodes: 3 * blk}, ledger.NoSite: {Nodes: 3 * blk}}
	wantNodes := map[string]uint64{nodes[0].String(): 6 * blk, nodes[1].String(): 4 * blk}
	if !reflect.DeepEqual(d.Sites, wantSites) || !reflect.DeepEqual(d.Nodes, wantNodes) ||
		d.Spend != (api.Spend{Total: 10 * blk, Nodes: 10 * blk}) || d.Account.Balance != 1<<30-10*blk {
		t.Fatalf("dashboard %+v\nwant sites %+v nodes %+v", d, wantSites, wantNodes)
	}
	var st api.Statement
	tg.apiJSON(t, "GET", "/v1/accounts/acme/statement?type=settle", testAdmin, "", http.StatusOK, &st)
	var sum uint64
	for _, e := range st.Entries {
		sum += e.Bytes
	}
	if len(st.Entries) != 6 || sum != 10*blk {
		t.Fatalf("statement: %d settle entries, %d bytes", len(st.Entries), sum)
	}

	// Each node reads its own earnings with a request signed by its key;
	// not another node's.
	for i := range nodeKeys {
		joinNode(t, tg, byte(31+i), sitetest.RecordAt(t, byte(31+i), "127.0.0.1"))
	}
	waitFor(t, "nodes to join", func() bool {
		live, _ := tg.Coordinator().LiveNodes(t.Context())
		return len(live) == 2
	})
	get := func(path string, key ed25519.PrivateKey) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, tg.URL()+path, nil)
		nodeproto.SignContentRequest(req, key, time.Now())
		resp, err := tg.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b json.RawMessage
		_ = json.NewDecoder(resp.Body).Decode(&b)
		return resp.StatusCode, b
	}
	for i, k := range nodeKeys {
		id := noderecord.NodeIDFromKey(k.Public().(ed25519.PublicKey))
		code, body := get("/v1/nodes/"+id+"/earnings", k)
		var e api.Earnings
		if code != http.StatusOK || json.Unmarshal(body, &e) != nil || e.Earned != wantNodes[id] || e.From["acme"] != wantNodes[id] {
			t.Fatalf("node %d earnings: %d %s", i, code, body)
		}
	}
	other := noderecord.NodeIDFromKey(nodeKeys[1].Public().(ed25519.PublicKey))
	if code, body := get("/v1/nodes/"+other+"/earnings", nodeKeys[0]); code != http.StatusForbidden {
		t.Fatalf("another node's earnings: %d %s", code, body)
	}
}

// constReader reads one byte forever: a deterministic session key seed.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}
