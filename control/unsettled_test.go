package control

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/ledger"
	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/sitetest"
	"github.com/verity-cdn/verity/node"
)

// TestNodeUnsettledIsAClaim: a node that reports, in its heartbeat, far
// more unsettled receipts than it holds (for the paying account, for
// invalid account names, for more accounts than are kept) has its claim
// shown as a claim, bounded, to whoever may read the node, and is paid
// exactly the receipts it settles: its earnings, the account's balance
// and the dashboard are what the settlement made them, whatever it
// claims. A node that reports nothing shows no figure (unknown), not 0.
func TestNodeUnsettledIsAClaim(t *testing.T) {
	tg, bus := accountsGateway(t, true)
	const topup = 1 << 30
	tg.apiJSON(t, "POST", "/v1/accounts", testAdmin, `{"name":"acme","freezeBelow":1}`, http.StatusCreated, nil)
	tg.apiJSON(t, "POST", "/v1/accounts/acme/topup", testAdmin, fmt.Sprintf(`{"bytes":%d}`, topup), http.StatusOK, nil)

	liar, quiet := sitetest.Key(51), sitetest.Key(52)
	claim := &nodeproto.PendingReceipts{Sessions: 1 << 20, Bytes: 1 << 50, ByAccount: map[string]uint64{"acme": 1 << 50, "not a name!": 1 << 40}}
	for i := range 2 * nodeproto.MaxPendingAccounts {
		claim.ByAccount[fmt.Sprintf("other%02d", i)] = uint64(i + 1)
	}
	joinNodeWith(t, tg, 51, sitetest.RecordAt(t, 51, "127.0.0.1"), func(c *node.CoordClientConfig) {
		c.Status = func() nodeproto.Heartbeat { return nodeproto.Heartbeat{Version: "test", Receipts: claim} }
	})
	joinNode(t, tg, 52, sitetest.RecordAt(t, 52, "127.0.0.1")) // reports no receipts
	liarID := noderecord.NodeIDFromKey(liar.Public().(ed25519.PublicKey))
	quietID := noderecord.NodeIDFromKey(quiet.Public().(ed25519.PublicKey))

	// What it really delivered and settles: 3 blocks.
	gwKey := sitetest.Key(200)
	settler, err := ledger.New(t.Context(), ledger.Config{Bus: bus, Keys: payment.NewKeySet(gwKey.Public().(ed25519.PublicKey))})
	if err != nil {
		t.Fatal(err)
	}
	defer settler.Close()
	var nk payment.NodeKey
	copy(nk[:], liar.Public().(ed25519.PublicKey))
	s, err := payment.NewSigner(payment.SignerConfig{Rand: constReader(7)})
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: "acme", Site: "blog", Session: s.SessionKey(), Budget: 1 << 30, NodeCap: 1 << 30,
		Nodes: []payment.NodeTag{payment.TagOf(nk)}, Expires: time.Now().Add(time.Hour)}
	if err := v.Sign(gwKey); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVoucher(v); err != nil {
		t.Fatal(err)
	}
	var r payment.Receipt
	for range 3 {
		if r, _, err = s.Verified(nk, payment.BlockSize); err != nil {
			t.Fatal(err)
		}
	}
	enc, _ := v.MarshalBinary()
	rb, _ := r.MarshalBinary()
	if _, err := settler.Settle(t.Context(), nodeproto.Batch{Node: nk, Account: "acme", Items: []nodeproto.BatchItem{{Voucher: enc, Receipt: rb}}}); err != nil {
		t.Fatal(err)
	}
	const paid = 3 * payment.BlockSize

	var ni api.NodeInfo
	testutil.Eventually(t, 10*time.Second, "the liar's claim in the registry", func() bool {
		resp, body := tg.api(t, "GET", "/v1/nodes/"+liarID, testAdmin, nil)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &ni) == nil && ni.ClaimedUnsettled != nil
	})
	u := ni.ClaimedUnsettled
	if u.Bytes != 1<<50 || u.Sessions != 1<<20 || len(u.ByAccount) != nodeproto.MaxPendingAccounts || u.ByAccount["acme"] != 1<<50 {
		t.Fatalf("claim shown as %+v (%d accounts)", u, len(u.ByAccount))
	}
	if _, ok := u.ByAccount["not a name!"]; ok {
		t.Fatalf("an invalid account name kept: %v", u.ByAccount)
	}
	var quietInfo api.NodeInfo
	testutil.Eventually(t, 10*time.Second, "the quiet node listed", func() bool {
		resp, body := tg.api(t, "GET", "/v1/nodes/"+quietID, testAdmin, nil)
		return resp.StatusCode == http.StatusOK && json.Unmarshal(body, &quietInfo) == nil
	})
	if quietInfo.ClaimedUnsettled != nil {
		t.Fatalf("a node that reports nothing shows %+v, want unknown", quietInfo.ClaimedUnsettled)
	}

	// Paid what it settled, nothing of what it claims.
	var e api.Earnings
	tg.apiJSON(t, "GET", "/v1/nodes/"+liarID+"/earnings", testAdmin, "", http.StatusOK, &e)
	if e.Earned != paid || !reflect.DeepEqual(e.From, map[string]uint64{"acme": paid}) {
		t.Fatalf("earnings %+v, want %d from acme", e, paid)
	}
	var d api.Dashboard
	tg.apiJSON(t, "GET", "/v1/accounts/acme/dashboard", testAdmin, "", http.StatusOK, &d)
	if d.Account.Balance != topup-paid || d.Nodes[liarID] != paid || d.Spend.Nodes != paid {
		t.Fatalf("dashboard %+v: want balance %d, %d paid to the node", d, topup-paid, paid)
	}
	var h api.Series
	tg.apiJSON(t, "GET", "/v1/nodes/"+liarID+"/history", testAdmin, "", http.StatusOK, &h)
	var earned uint64
	for _, b := range h.Values["earned"] {
		earned += uint64(b)
	}
	if earned != paid {
		t.Fatalf("history earned %d, want %d", earned, paid)
	}
}
