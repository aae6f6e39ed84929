//go:build !js

package unixfs

import (
	"testing"

	gocid "github.com/ipfs/go-cid"

	"github.com/verity-cdn/verity/internal/cid"
)

func mustGoCID(t testing.TB, c cid.CID) gocid.Cid {
	g, err := gocid.Cast(c.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	return g
}
