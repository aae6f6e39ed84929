package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/nodeproto"
	"github.com/verity-cdn/verity/internal/stall"
)

// pinSources are the URLs a pin order may be fetched from, in order: the
// accepting gateway's CAR, then the other holders' (nodeproto.Pin).
func pinSources(p nodeproto.Pin) []string {
	var out []string
	if p.CAR != "" {
		out = append(out, p.CAR)
	}
	for _, s := range p.Sources {
		if s != "" && s != p.CAR {
			out = append(out, s)
		}
	}
	return out
}

// signForHolder signs a request to another node with the node key and
// sets the coordinator's grant on it: a holder that requires payment
// serves its HTTP port only to such requests (Node.platformOnly). Without
// a grant the request goes unsigned, as to any trustless gateway.
func (n *Node) signForHolder(req *http.Request, grant string) {
	if grant == "" {
		return
	}
	nodeproto.SignContentRequest(req, n.priv, n.cfg.Now())
	req.Header.Set(nodeproto.GrantHeader, grant)
}

// fetchPin fetches root's CAR from src, checks that it is exactly root's
// whole DAG (internal/carcheck, as the gateway checks a deploy: a source
// may be another node, which is trusted for nothing) and stores every
// block (importCAR). signed signs the GET with the node key (the
// gateway's CAR requires it); from another holder the GET is signed too
// and carries grant (nodeproto.Pin.Grant). On success it returns the import run, which
// the caller releases once the pin is recorded; on failure what the run
// stored is undone and released.
func (n *Node) fetchPin(ctx context.Context, root cid.Cid, src string, signed bool, grant string) (_ *importRun, err error) {
	client := n.cfg.CoordinatorClient
	if client == nil {
		client = http.DefaultClient
	}
	if !signed {
		// Another node: it may not send its peers elsewhere.
		c := *client
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return errHolderRedirect }
		client = &c
	}
	// No source may trickle, the gateway included: a pin holds the
	// import lock, which a collection waits for, and every pin after
	// the collection waits for it.
	ctx, guard := stall.Watch(ctx, n.cfg.PinSourceStall, stallMin, errHolderStalled)
	defer guard.Stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/vnd.ipld.car")
	if signed {
		nodeproto.SignContentRequest(req, n.priv, n.cfg.Now())
	} else {
		n.signForHolder(req, grant)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", guard.Err(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, maxPinError))
		return nil, fmt.Errorf("fetch: %s: %s", resp.Status, msg)
	}
	dag := root // another holder: only root's traversal is taken
	if signed {
		dag = cid.Undef
	}
	body := guard.Reader(counted{resp.Body, n.metrics.pinFetched})
	run := n.newImportRun()
	if _, err = n.importCAR(ctx, run, body, dag, root); err != nil {
		run.release()
		return nil, guard.Err(err)
	}
	return run, nil
}

var (
	errHolderRedirect = errors.New("a holder may not redirect")
	errHolderStalled  = errors.New("the source sent too little: abandoned for the next source")
)

// stallMin is the least a holder must deliver in every PinSourceStall.
const stallMin = 64 << 10

// errNoPinSource: a pin order with no URL at all.
var errNoPinSource = errors.New("no source to fetch from")
