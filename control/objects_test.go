package control

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verity-cdn/verity/gateway"
	"github.com/verity-cdn/verity/internal/testutil"
)

// A CAR fetched from a node (OpenCAR, for content this gateway does not
// hold) is bounded by what may be stored (MaxContentBytes), not by the
// deploy limit: an object over MaxDeployBytes is fetched and kept; a node
// sending more than MaxContentBytes, or endless bytes, is cut off there
// with ErrTooLarge, and nothing is kept.
func TestFetchCARBoundedByContentLimit(t *testing.T) {
	bus := openBus(t, "fetch-bound")
	s, _ := startStack(t, bus, Config{AdminToken: testAdmin, AllowPrivateAddrs: true,
		MaxDeployBytes: 1 << 20, MaxContentBytes: 2 << 20}, gateway.Config{})
	fits, fitsRoot := siteCAR(t, map[string][]byte{"big.bin": noise(3 << 19)}) // 1.5 MiB of content
	over, overRoot := siteCAR(t, map[string][]byte{"big.bin": noise(3 << 20)})
	serve := func(b []byte) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(b) }))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(fits[:len(fits)/2]) // a good start, then bytes without end
		zeros := make([]byte, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(zeros); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)

	if len(fits) <= 1<<20 || len(fits) > 2<<20 {
		t.Fatalf("premise: a CAR of %d bytes, between the two limits", len(fits))
	}
	limit := max(s.ctl.cfg.MaxContentBytes, s.ctl.cfg.MaxDeployBytes) // OpenCAR's
	if err := s.ctl.fetchCAR(t.Context(), serve(fits), fitsRoot, limit); err != nil {
		t.Fatalf("a CAR over the deploy limit, within the content limit: %v", err)
	}
	if f, err := s.ctl.OpenCAR(t.Context(), fitsRoot); err != nil {
		t.Fatal(err)
	} else {
		got, _ := io.ReadAll(f)
		f.Close()
		if !bytes.Equal(got, fits) {
			t.Fatal("the kept CAR differs from the one sent")
		}
	}
	for name, url := range map[string]string{"over the limit": serve(over), "endless": endless.URL} {
		root := overRoot
		if name == "endless" {
			root = testCID(t, "endless")
		}
		err := s.ctl.fetchCAR(t.Context(), url, root, limit)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: got %v, want ErrTooLarge", name, err)
		}
		if _, err := os.Stat(s.ctl.contentPath(root)); err == nil {
			t.Errorf("%s: kept", name)
		}
	}
	// The caller's own bound (OpenCARWithin: an object's size) cuts a
	// CAR within the content limit off past it.
	if err := os.Remove(s.ctl.contentPath(fitsRoot)); err != nil {
		t.Fatal(err)
	}
	if err := s.ctl.fetchCAR(t.Context(), serve(fits), fitsRoot, int64(len(fits))-1); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a CAR past the caller's bound: got %v, want ErrTooLarge", err)
	}
	if left, _ := os.ReadDir(filepath.Join(s.ctl.cfg.DataDir, "uploads")); len(left) != 0 {
		t.Errorf("staged files left: %v", left)
	}
}

// noise returns n random bytes (content no chunk of which repeats).
func noise(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// A holder that sends a CAR's first bytes and then trickles, or never
// answers its head, is abandoned once HolderStall passes with less
// than 64 KiB read, so OpenCAR goes on to the next holder, and nothing
// of it is kept. Before, the fetch waited for as long as its caller did.
func TestFetchCARFromStallingHolder(t *testing.T) {
	bus := openBus(t, "fetch-stall")
	s, _ := startStack(t, bus, Config{AdminToken: testAdmin, AllowPrivateAddrs: true,
		HolderStall: testutil.Scale(500 * time.Millisecond)}, gateway.Config{})
	car, root := siteCAR(t, map[string][]byte{"big.bin": noise(1 << 20)})
	for name, first := range map[string][]byte{"first bytes, then a trickle": car[:100], "no head": nil} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if first == nil {
					<-r.Context().Done()
					return
				}
				w.Write(first)
				w.(http.Flusher).Flush()
				for i := range 2000 { // bounded: a byte per 10 ms
					if r.Context().Err() != nil {
						return
					}
					w.Write(car[100+i : 101+i])
					w.(http.Flusher).Flush()
					time.Sleep(10 * time.Millisecond)
				}
			}))
			defer srv.Close()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			err := s.ctl.fetchCAR(ctx, srv.URL, root, 4<<20)
			if !errors.Is(err, errHolderStalled) {
				t.Fatalf("got %v, want the holder abandoned as stalled", err)
			}
			if _, err := os.Stat(s.ctl.contentPath(root)); err == nil {
				t.Fatal("kept")
			}
		})
	}
}
