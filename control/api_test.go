package control

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/events"
	"github.com/verity-cdn/verity/internal/ledger"
)

// The API answers with internal/api's documents, declared apart from the
// ledger's and the bus's records: converted, they encode byte for byte as
// the records themselves did, every field set.
func TestAPIDocumentsEncodeAsTheRecords(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	acct := ledger.Account{Name: "acme", Balance: -1, FreezeBelow: 2, Frozen: true, ToppedUp: 3, Spent: 4, Charged: 5, Sessions: 6, Created: now, Revision: 7}
	entry := ledger.StatementEntry{Time: now, Type: ledger.EntryCharge, Bytes: 8, Node: "n", Gateway: "g", Sites: map[string]uint64{"blog": 8}, Balance: -9, Revision: 10, Account: "acme"}
	dash := ledger.Dashboard{
		Account: acct,
		Spend:   ledger.Spend{Total: 11, Nodes: 12, Gateway: 13},
		Sites:   map[string]ledger.SiteSpend{"blog": {Nodes: 14, Gateway: 15}, ledger.NoSite: {Nodes: 16}},
		Nodes:   map[string]uint64{"n": 17},
		TopUps:  []ledger.StatementEntry{entry},
	}
	earn := ledger.Earnings{Node: "n", Earned: 18, From: map[string]uint64{"acme": 18}}
	ev, err := events.New(events.TypeSitePublished, "gw", events.SitePublished{Site: "blog", Root: "r", Version: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		record, v any
	}{
		{"account", acct, accountOf(acct)},
		{"statement entries", []ledger.StatementEntry{entry}, entriesOf([]ledger.StatementEntry{entry})},
		{"no statement entries", []ledger.StatementEntry(nil), entriesOf(nil)},
		{"dashboard", dash, dashboardOf(dash)},
		{"empty dashboard", ledger.Dashboard{}, dashboardOf(ledger.Dashboard{})},
		{"earnings", earn, api.Earnings(earn)},
		{"event", ev, eventOf(ev)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := json.Marshal(tc.record)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("api document\n%s\nrecord\n%s", got, want)
			}
		})
	}
}
