package node

import (
	"io"
	"net/http"
	"strings"

	"github.com/verity-cdn/verity/internal/car"
	"github.com/verity-cdn/verity/internal/verify"
	"github.com/verity-cdn/verity/internal/wire"
)

// Block encodings on streams (docs/protocol.md §3.2). A client that lists
// bao16 in its request's verity-blocks field gets the CAR of a 2xx
// response transcoded on the way out: each raw BLAKE3 block as its Bao
// encoding, so it can verify and release 16 KiB at a time. The shared
// handler still writes the plain CAR; the credit window (payments) and the
// egress limit count those bytes, not the encoding's 0.4% of parents.

// blockEncoding is the encoding the node uses to answer req: "" (the plain
// CAR) unless the client offers one the node serves.
func (n *Node) blockEncoding(req *wire.Request) string {
	if n.cfg.DisableBao {
		return ""
	}
	return req.BlockEncoding(wire.BlocksBao16Slices, wire.BlocksBao16)
}

// baoEncoding reports whether enc is one of the Bao block encodings.
func baoEncoding(enc string) bool {
	return enc == wire.BlocksBao16 || enc == wire.BlocksBao16Slices
}

// slicePlan returns what tells the encoder of a response to req in the
// block encoding enc which leaves go as slices: nil unless enc is
// bao16-slices and the request has an entity-bytes range.
func slicePlan(enc string, req *wire.Request) car.Slicer {
	if enc != wire.BlocksBao16Slices {
		return nil
	}
	vreq, err := verify.ParseTarget(req.Target)
	if err != nil || vreq.Range == nil {
		return nil
	}
	return verify.NewSlicePlan(vreq)
}

// encodesBody reports whether a response with this status and header gets
// the negotiated block encoding: a 2xx CAR.
func encodesBody(code int, hdr http.Header) bool {
	return code/100 == 2 && strings.HasPrefix(hdr.Get("Content-Type"), "application/vnd.ipld.car")
}

// maxCIDBytes bounds a CID in a section: four varints and a digest.
const maxCIDBytes = 4*10 + 128

// bodyEncoder starts the encoding of a response body for a stream writer:
// when enc is set and the response is a 2xx CAR, it names enc in the head
// and returns the transcoder the body goes through to raw, taking the
// blocks' outboards from obs (outboardsFor) and the slices from plan
// (slicePlan) when not nil; else nil.
func (n *Node) bodyEncoder(enc string, code int, hdr http.Header, raw io.Writer, obs *outboards, plan car.Slicer) *car.BaoWriter {
	if !baoEncoding(enc) || !encodesBody(code, hdr) {
		return nil
	}
	hdr.Set(wire.HeaderBlocks, enc)
	n.metrics.baoStreams.Inc()
	w := car.NewBaoWriter(raw, n.cfg.MaxBlockSize+maxCIDBytes)
	if obs != nil {
		w.UseOutboards(obs)
	}
	if plan != nil {
		w.UseSlices(plan)
	}
	return w
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
