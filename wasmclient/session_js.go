//go:build js

package wasmclient

import (
	"errors"
	"syscall/js"
)

// RawJSON is a JSON value kept as its text.
type RawJSON []byte

// decodeSession uses the browser's JSON.parse: encoding/json would add
// about 90 KB (gzip) to the wasm.
func decodeSession(data []byte) (*Session, error) {
	v, err := jsTry(func() js.Value { return jsJSON.Call("parse", string(data)) })
	if err != nil {
		return nil, err
	}
	if v.Type() != js.TypeObject || js.Global().Get("Array").Call("isArray", v).Bool() {
		return nil, errors.New("session is not an object")
	}
	s := &Session{
		Version:  jsInt(v.Get("version")),
		Site:     jsStr(v.Get("site")),
		Root:     jsStr(v.Get("root")),
		TTL:      jsInt(v.Get("ttl")),
		Fallback: jsStr(v.Get("fallback")),

		Account:      jsStr(v.Get("account")),
		Voucher:      jsStr(v.Get("voucher")),
		PaymentError: jsStr(v.Get("paymentError")),
	}
	if e := v.Get("voucherExpires"); e.Type() == js.TypeNumber {
		s.VoucherExpires = int64(e.Float())
	}
	nodes := v.Get("nodes")
	if nodes.Type() == js.TypeObject && js.Global().Get("Array").Call("isArray", nodes).Bool() {
		for i, n := 0, nodes.Length(); i < n; i++ {
			nv := nodes.Index(i)
			if nv.Type() != js.TypeObject {
				continue
			}
			node := Node{
				ID:           jsStr(nv.Get("id")),
				WebTransport: jsStr(nv.Get("webtransport")),
				HTTP:         jsStr(nv.Get("http")),
				WebRTC:       nv.Get("webrtc").Type() == js.TypeBoolean && nv.Get("webrtc").Bool(),
			}
			if hs := nv.Get("certHashes"); hs.Type() == js.TypeObject {
				for j, m := 0, hs.Length(); j < m; j++ {
					if h := hs.Index(j); h.Type() == js.TypeString {
						node.CertHashes = append(node.CertHashes, h.String())
					}
				}
			}
			if rec := nv.Get("record"); rec.Type() == js.TypeObject {
				node.Record = RawJSON(jsJSON.Call("stringify", rec).String())
			}
			s.Nodes = append(s.Nodes, node)
		}
	}
	return s, nil
}

func jsStr(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}

// jsInt returns v as an int when it is an integral number, else -1.
func jsInt(v js.Value) int {
	if v.Type() != js.TypeNumber {
		return -1
	}
	f := v.Float()
	if f != float64(int(f)) {
		return -1
	}
	return int(f)
}
