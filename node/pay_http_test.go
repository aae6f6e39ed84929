package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/noderecord"
	"github.com/verity-cdn/verity/node"
)

// A node that requires payment serves no content on its HTTP port to a
// caller that is not the platform's: a visitor refused on WebTransport
// for want of a voucher must not get the same file with a plain GET. The
// platform's callers still get it: a gateway or the coordinator signing
// with a gateway key the node trusts, another node with the
// coordinator's grant for that content.
func TestRequirePaymentHTTPPlatformOnly(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{Require: true}, 64<<20)
	root := pn.fx.root.String()
	path := "/ipfs/" + root + "/big.bin"
	_, otherGW, _ := ed25519.GenerateKey(rand.Reader)
	nodePub, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	nodeID := noderecord.NodeIDFromKey(nodePub)
	now := time.Now()
	grant := func(node, c string, exp time.Time, key ed25519.PrivateKey) string {
		return nodeproto.SignGrant(nodeproto.Grant{Node: node, CID: c, Scope: nodeproto.GrantDAG, Expires: exp}, key)
	}
	otherCID := pn.fx.root.String()
	for c := range pn.fx.blocks {
		if !c.Equals(pn.fx.root) {
			otherCID = c.String()
			break
		}
	}

	for _, tc := range []struct {
		name string
		sign func(*http.Request)
		want int
	}{
		{"anonymous", func(*http.Request) {}, http.StatusPaymentRequired},
		{"signed by a gateway key the node does not trust", func(r *http.Request) {
			nodeproto.SignGatewayRequest(r, otherGW, now)
		}, http.StatusPaymentRequired},
		{"a gateway signature of another path", func(r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/ipfs/" + root + "/a.txt"
			nodeproto.SignGatewayRequest(r2, pn.gwKey, now)
			r.Header.Set("Authorization", r2.Header.Get("Authorization"))
		}, http.StatusPaymentRequired},
		{"a gateway signature of another query", func(r *http.Request) {
			r2 := r.Clone(r.Context())
			r2.URL.RawQuery = "format=raw"
			nodeproto.SignGatewayRequest(r2, pn.gwKey, now)
			r.Header.Set("Authorization", r2.Header.Get("Authorization"))
		}, http.StatusPaymentRequired},
		{"a node without a grant", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
		}, http.StatusPaymentRequired},
		{"a node with a grant for another node", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant(pn.node.ID(), root, now.Add(time.Hour), pn.gwKey))
		}, http.StatusPaymentRequired},
		{"a node with a grant for other content", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant(nodeID, otherCID, now.Add(time.Hour), pn.gwKey))
		}, http.StatusPaymentRequired},
		{"a node with an expired grant", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant(nodeID, root, now.Add(-time.Minute), pn.gwKey))
		}, http.StatusPaymentRequired},
		{"a node with a grant it signed itself", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant(nodeID, root, now.Add(time.Hour), nodeKey))
		}, http.StatusPaymentRequired},
		{"a node with a block's grant for the root's DAG", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, nodeproto.SignGrant(nodeproto.Grant{Node: nodeID, CID: root, Scope: nodeproto.GrantBlock, Expires: now.Add(time.Hour)}, pn.gwKey))
		}, http.StatusPaymentRequired},
		{"a gateway", func(r *http.Request) {
			nodeproto.SignGatewayRequest(r, pn.gwKey, now)
		}, http.StatusOK},
		{"a node with its grant", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant(nodeID, root, now.Add(time.Hour), pn.gwKey))
		}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := signedGet(t, pn.node.HTTPURL()+path+"?format=car", tc.sign)
			if code != tc.want {
				t.Fatalf("GET %s: %d with %d bytes, want %d", path, code, len(body), tc.want)
			}
			if tc.want == http.StatusPaymentRequired && !strings.HasPrefix(string(body), "payment_required: ") {
				t.Fatalf("402 body %q: want the payment_required code first", body)
			}
			if tc.want == http.StatusOK && len(body) < len(pn.fx.big) {
				t.Fatalf("got a CAR of %d bytes, less than big.bin's %d", len(body), len(pn.fx.big))
			}
		})
	}

	// A grant for one block's DAG does not reach another DAG by a path
	// that climbs out of it (boxo's handler resolves ".."), nor by its
	// slashes escaped.
	leafGrant := grant(nodeID, otherCID, now.Add(time.Hour), pn.gwKey)
	for _, p := range []string{
		"/ipfs/" + otherCID + "/../" + root + "/big.bin",
		"/ipfs/" + otherCID + "/../../ipfs/" + root,
		"/ipfs/" + otherCID + "%2F..%2F" + root,
		"/ipfs/" + otherCID + "/./../" + root,
	} {
		code, _, body := signedGet(t, pn.node.HTTPURL()+p+"?format=car", func(r *http.Request) {
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, leafGrant)
		})
		if code != http.StatusPaymentRequired {
			t.Fatalf("GET %s with a grant for %s: %d with %d bytes, want 402", p, otherCID, code, len(body))
		}
	}

	// A node that does not require payment serves anyone, as any
	// trustless gateway does.
	open := newPayNet(t, node.PaymentConfig{}, 64<<20)
	resp, err := http.Get(open.node.HTTPURL() + "/ipfs/" + open.fx.root.String() + "/big.bin?format=car")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a node without --require-payment answered %d", resp.StatusCode)
	}
}

// A node ordered to pin a root fetches it from another holder that
// requires payment with the grant of its pin order; without one the
// holder refuses it.
func TestPinFromPaidHolderWithGrant(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{Require: true}, 64<<20)
	root := pn.fx.root.String()
	src := pn.node.HTTPURL() + "/ipfs/" + root + "?format=car"

	n1 := newNode(t, node.Config{})
	err := n1.Pin(t.Context(), nodeproto.Pin{Root: root, Sources: []string{src}})
	if err == nil || !strings.Contains(err.Error(), "402") {
		t.Fatalf("pin from a paid holder without a grant: %v", err)
	}
	other := nodeproto.SignGrant(nodeproto.Grant{Node: pn.node.ID(), CID: root, Scope: nodeproto.GrantDAG, Expires: time.Now().Add(time.Hour)}, pn.gwKey)
	if err := n1.Pin(t.Context(), nodeproto.Pin{Root: root, Sources: []string{src}, Grant: other}); err == nil {
		t.Fatal("pinned with the grant of another node")
	}
	grant := nodeproto.SignGrant(nodeproto.Grant{Node: n1.ID(), CID: root, Scope: nodeproto.GrantDAG, Expires: time.Now().Add(time.Hour)}, pn.gwKey)
	if err := n1.Pin(t.Context(), nodeproto.Pin{Root: root, Sources: []string{src}, Grant: grant}); err != nil {
		t.Fatalf("pin from a paid holder with its grant: %v", err)
	}
	for c := range pn.fx.blocks {
		if !has(t, n1, c) {
			t.Fatalf("block %s missing after the pin", c)
		}
	}
}

// A block's grant (a repair) gets that one raw block, however the request
// names the format: the trustless handler answers ?format= first, then the
// first IPLD type of Accept, so a raw type further down the Accept list,
// or an Accept of raw beside ?format=car, is no raw request.
func TestBlockGrantServesOneBlock(t *testing.T) {
	pn := newPayNet(t, node.PaymentConfig{Require: true}, 64<<20)
	root := pn.fx.root.String()
	nodePub, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	grant := nodeproto.SignGrant(nodeproto.Grant{Node: noderecord.NodeIDFromKey(nodePub), CID: root, Scope: nodeproto.GrantBlock, Expires: now.Add(time.Hour)}, pn.gwKey)
	var block []byte
	for c, b := range pn.fx.blocks {
		if string(c.Hash()) == string(pn.fx.root.Hash()) {
			block = b
		}
	}
	const raw, car = "application/vnd.ipld.raw", "application/vnd.ipld.car"

	for _, tc := range []struct {
		query, accept string
		want          int
	}{
		{"?format=raw", raw, http.StatusOK},
		{"?format=raw", "", http.StatusOK},
		{"", raw, http.StatusOK},
		{"?format=raw&dag-scope=all", car, http.StatusOK},
		{"?format=car", raw, http.StatusPaymentRequired},
		{"", car + ", " + raw, http.StatusPaymentRequired},
		{"?format=car&dag-scope=all", raw, http.StatusPaymentRequired},
		{"", "", http.StatusPaymentRequired},
	} {
		code, ctype, body := signedGet(t, pn.node.HTTPURL()+"/ipfs/"+root+tc.query, func(r *http.Request) {
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			nodeproto.SignContentRequest(r, nodeKey, now)
			r.Header.Set(nodeproto.GrantHeader, grant)
		})
		if code != tc.want {
			t.Fatalf("%s, Accept %q, with a block's grant: %d with %d bytes (%s), want %d", tc.query, tc.accept, code, len(body), ctype, tc.want)
		}
		if tc.want == http.StatusOK && string(body) != string(block) {
			t.Fatalf("%s, Accept %q, with a block's grant: %d bytes of %s, want the root's raw block", tc.query, tc.accept, len(body), ctype)
		}
	}
}

// signedGet sends GET url with what sign sets on the request and returns
// the answer's status, content type and body.
func signedGet(t *testing.T, url string, sign func(*http.Request)) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	sign(req)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}
