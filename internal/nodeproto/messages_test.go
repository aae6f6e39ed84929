package nodeproto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/internal/payment"
)

var update = flag.Bool("update", false, "rewrite testdata/messages.golden")

// The encodings of every message are those nodes in the field speak: a
// change to testdata/messages.golden is a protocol change.
func TestMessagesGolden(t *testing.T) {
	msgs := goldenMessages(t)
	var out bytes.Buffer
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(b)
		out.WriteByte('\n')
	}
	path := filepath.Join("testdata", "messages.golden")
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := bytes.Split(out.Bytes(), []byte("\n"))
	wantLines := bytes.Split(want, []byte("\n"))
	if len(got) != len(wantLines) {
		t.Fatalf("%d messages, golden has %d", len(got), len(wantLines))
	}
	for i := range got {
		if !bytes.Equal(got[i], wantLines[i]) {
			t.Errorf("message %d:\n got %s\nwant %s", i, got[i], wantLines[i])
		}
	}
	// And back: decoding the golden lines gives the same values.
	for i, line := range wantLines[:len(msgs)] {
		var m Message
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if normalize(m) != normalize(msgs[i]) {
			t.Errorf("message %d decodes to %+v", i, m)
		}
	}
}

// normalize re-encodes m so that times compare by value.
func normalize(m Message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

func TestJoinSigningBytes(t *testing.T) {
	ch := *goldenMessages(t)[0].Challenge
	want := "verity-node-join/1\ncoord-1\n000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n2025-03-04T05:06:07.890123456Z\nnnode"
	if got := string(JoinSigningBytes(ch, "nnode")); got != want {
		t.Fatalf("JoinSigningBytes = %q, want %q", got, want)
	}
	// The expiry is signed in UTC whatever the zone it is held in.
	ch.Expires = ch.Expires.In(time.FixedZone("X", 3600))
	if got := string(JoinSigningBytes(ch, "nnode")); got != want {
		t.Fatalf("JoinSigningBytes in another zone = %q", got)
	}
}

// goldenKey is a fixed ed25519 key, so signatures are reproducible.
func goldenKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i + 1)
	}
	return ed25519.NewKeyFromSeed(seed)
}

var goldenTime = time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.UTC)

// goldenMessages is one message of each type, with every field set, and
// the same with optional fields left out: their JSON encodings are pinned
// in testdata/messages.golden (the wire other people's nodes speak).
func goldenMessages(t *testing.T) []Message {
	t.Helper()
	key := goldenKey()
	pub := key.Public().(ed25519.PublicKey)
	rec, err := noderecord.Sign(noderecord.Record{
		HTTP: "http://192.0.2.1:4001", WebTransport: "https://192.0.2.1:4433/verity/v1",
		CertHashes: []noderecord.CertHash{{SHA256: bytes.Repeat([]byte{7}, 32), NotBefore: goldenTime, NotAfter: goldenTime.Add(13 * 24 * time.Hour)}},
		Issued:     goldenTime, Expires: goldenTime.Add(time.Hour), WebRTC: true,
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	node := noderecord.NodeIDFromKey(pub)
	nonce := make([]byte, NonceSize)
	for i := range nonce {
		nonce[i] = byte(i)
	}
	ch := Challenge{Nonce: nonce, Coordinator: "coord-1", Expires: goldenTime}
	hb := Heartbeat{Capacity: 1 << 40, FreeDisk: 1 << 39, Blocks: 12345, Load: 0.25, Version: "v1.2.3", Region: "NL", Record: &rec}
	var nk payment.NodeKey
	copy(nk[:], pub)
	var sk payment.SessionKey
	for i := range sk {
		sk[i] = byte(255 - i)
	}
	return []Message{
		{Type: MsgChallenge, Challenge: &ch},
		{Type: MsgJoin, Join: &Join{Node: node, Challenge: ch, Signature: ed25519.Sign(key, JoinSigningBytes(ch, node)), Record: rec, Status: &Heartbeat{Version: "v1.2.3"}}},
		{Type: MsgJoin, Join: &Join{Node: node, Challenge: ch, Signature: []byte{1, 2, 3}, Record: rec}},
		{Type: MsgWelcome, Welcome: &Welcome{Node: node, Session: "0123456789abcdef01234567", HeartbeatMS: 10000}},
		{Type: MsgHeartbeat, Heartbeat: &hb},
		{Type: MsgHeartbeat, Heartbeat: &Heartbeat{}},
		{Type: MsgPin, Pin: &Pin{Root: "bafyroot", CAR: "https://gw.example/v1/content/bafyroot.car", Sources: []string{"http://192.0.2.2:4001/ipfs/bafyroot?format=car"}, Site: "blog"}},
		{Type: MsgPin, Pin: &Pin{Root: "bafyroot", CAR: ""}},
		{Type: MsgPinned, Pinned: &Pinned{Root: "bafyroot"}},
		{Type: MsgPinned, Pinned: &Pinned{Root: "bafyroot", Error: "node: bad CAR"}},
		{Type: MsgPlaced, Placed: &Placed{Roots: []string{"bafya", "bafyb"}}},
		{Type: MsgPlaced, Placed: &Placed{}},
		{Type: MsgUnpin, Unpin: &Unpin{Root: "bafya"}},
		{Type: MsgReported, Reported: &Reported{Reasons: map[string]int{"bad-block": 2, "timeout": 1}}},
		{Type: MsgWebRTCOffer, Offer: &WebRTCOffer{ID: "0a0b0c", SDP: "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"}},
		{Type: MsgWebRTCAnswer, Answer: &WebRTCAnswer{ID: "0a0b0c", SDP: "v=0\r\n"}},
		{Type: MsgWebRTCAnswer, Answer: &WebRTCAnswer{ID: "0a0b0c", Code: OfferCodeBusy, Error: "too many offers at once"}},
		{Type: MsgPayments, Payments: &Payments{Full: true, GatewayKeys: [][]byte{pub}, Accounts: []AccountState{{Name: "acme", Balance: 1 << 30, Frozen: false}, {Name: "broke", Balance: -5, Frozen: true}}, Nodes: 3}},
		{Type: MsgPayments, Payments: &Payments{}},
		{Type: MsgSettle, Settle: &Settle{ID: 7, Batch: Batch{Node: nk, Account: "acme", Items: []BatchItem{{Voucher: []byte("voucher"), Receipt: []byte("receipt")}}}}},
		{Type: MsgSettled, Settled: &Settled{ID: 7, Result: &SettleResult{
			Account: "acme", Node: node, Applied: 1 << 20, Balance: 1 << 29, Frozen: false, Revision: 12,
			Items: []ItemResult{{Index: 0, Session: sk, Settled: 1 << 20, Applied: 1 << 20, Deferred: 3, Unpayable: 4}, {Index: 2, Session: sk, Settled: 5, Applied: 0}},
		}, Rejected: []RejectedItem{{Index: 1, Code: "bad_signature"}}}},
		{Type: MsgSettled, Settled: &Settled{ID: 8, Code: SettleCodeRateLimited}},
		{Type: "unknown"},
	}
}
