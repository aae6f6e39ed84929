package siteclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/api"
	"github.com/verity-cdn/verity/internal/siteclient"
)

// A gateway that cannot reach its state store for a moment answers 503 or
// 504: the deploy is sent again, whole, and succeeds. A refusal is final.
func TestDeployRetriesBusyGateway(t *testing.T) {
	body := bytes.Repeat([]byte("car bytes "), 1000)
	for _, c := range []struct {
		name     string
		statuses []int // answers before the 200
		wantErr  bool
		wantSent int
	}{
		{"two busy answers", []int{http.StatusGatewayTimeout, http.StatusServiceUnavailable}, false, 3},
		{"always busy", []int{504, 504, 504, 504, 504}, true, 4},
		{"refused CAR is final", []int{http.StatusBadRequest}, true, 1},
		{"wrong token is final", []int{http.StatusForbidden}, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			sent := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got, _ := io.ReadAll(r.Body)
				mu.Lock()
				n := sent
				sent++
				mu.Unlock()
				if !bytes.Equal(got, body) {
					t.Errorf("attempt %d sent %d bytes, want the whole %d", n+1, len(got), len(body))
				}
				if n < len(c.statuses) {
					w.WriteHeader(c.statuses[n])
					json.NewEncoder(w).Encode(api.Error{Error: "busy"})
					return
				}
				json.NewEncoder(w).Encode(api.DeployRecord{Root: "bafy-test"})
			}))
			t.Cleanup(srv.Close)
			var retries []time.Duration
			cl := siteclient.New(siteclient.Config{Gateway: srv.URL, Token: "t", RetryWait: time.Millisecond,
				OnRetry: func(_ error, d time.Duration) { retries = append(retries, d) }})
			var progress int64
			rec, err := cl.Deploy(context.Background(), "blog", bytes.NewReader(body), int64(len(body)), func(n int64) { progress = n })
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && rec.Root != "bafy-test" {
				t.Fatalf("root %q", rec.Root)
			}
			var ae *siteclient.APIError
			if c.wantErr && !errors.As(err, &ae) {
				t.Fatalf("err %v is not an APIError", err)
			}
			if sent != c.wantSent || len(retries) != c.wantSent-1 {
				t.Fatalf("sent %d times with %d retries, want %d", sent, len(retries), c.wantSent)
			}
			for i := 1; i < len(retries); i++ {
				if retries[i] != 2*retries[i-1] {
					t.Fatalf("waits %v do not double", retries)
				}
			}
			if progress != int64(len(body)) {
				t.Fatalf("progress ends at %d of %d", progress, len(body))
			}
		})
	}
}

// Site (the token check before a deploy, and the polls of WaitPublished)
// asks again while the gateway answers that it is busy or its state
// store is electing a leader, and stops at a final answer.
func TestSiteRetriesWhileBusy(t *testing.T) {
	for _, c := range []struct {
		name     string
		statuses []int
		wantErr  bool
		wantSent int
	}{
		{"busy then served", []int{504, 503}, false, 3},
		{"wrong token is final", []int{http.StatusForbidden}, true, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			sent := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				n := sent
				sent++
				mu.Unlock()
				if n < len(c.statuses) {
					w.WriteHeader(c.statuses[n])
					json.NewEncoder(w).Encode(api.Error{Error: "busy"})
					return
				}
				json.NewEncoder(w).Encode(api.SiteStatus{Site: &api.SiteRecord{Name: "blog", Root: "bafy-test"}})
			}))
			t.Cleanup(srv.Close)
			cl := siteclient.New(siteclient.Config{Gateway: srv.URL, Token: "t", RetryWait: time.Millisecond})
			st, err := cl.Site(context.Background(), "blog")
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if !c.wantErr && (st.Site == nil || st.Site.Root != "bafy-test") {
				t.Fatalf("status %+v", st)
			}
			mu.Lock()
			defer mu.Unlock()
			if sent != c.wantSent {
				t.Fatalf("asked %d times, want %d", sent, c.wantSent)
			}
		})
	}
}
