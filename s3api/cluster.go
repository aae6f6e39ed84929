package s3api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A cluster's S3 servers: every gateway of a cluster may serve the API,
// behind one name and a load balancer, but a multipart upload's parts
// are staged on the disk of the server that created it. Its id carries
// that server's tag (uploadID = 32 hex digits, "-", the tag); a request
// for the upload (UploadPart, ListParts, Complete, Abort) that reaches
// another server is forwarded to the owner as it came, signature and
// body untouched, and the owner authenticates it as if it had come
// directly: forwarding grants nothing. The servers find each other in
// the s3_servers bucket (tag → URL), each renewing its entry every
// registryEvery; a forwarded request is never forwarded again.

// HeaderForwarded marks a request one S3 server forwarded to another.
const HeaderForwarded = "X-Verity-Forwarded-By"

// registryEvery is how often a server renews its s3_servers entry (the
// bucket drops entries after events.S3ServersTTL).
const registryEvery = 30 * time.Second

// ErrOwnerUnavailable answers a request for an upload whose server is
// not reachable: its parts are not lost, and S3 clients retry a 503.
var ErrOwnerUnavailable = &Error{Code: "ServiceUnavailable", Status: http.StatusServiceUnavailable, Message: "The server holding this multipart upload's parts is not reachable now: retry later."}

// serverEntry is a server's s3_servers entry.
type serverEntry struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// serverTag is the tag of the server named name: 12 hex digits.
func serverTag(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:6])
}

// uploadOwner is the tag of the server that holds upload id: "" for an
// id without one (made by a server before ids carried tags: its own).
func uploadOwner(id string) string {
	if len(id) == 32+1+12 && id[32] == '-' {
		return id[33:]
	}
	return ""
}

// ownUpload says whether upload id is held here.
func (s *Server) ownUpload(id string) bool {
	owner := uploadOwner(id)
	return owner == "" || owner == s.tag
}

// runRegistry keeps this server's s3_servers entry until ctx ends, then
// removes it.
func (s *Server) runRegistry(ctx context.Context) {
	b, _ := json.Marshal(serverEntry{Name: s.cfg.Name, URL: s.cfg.AdvertiseURL})
	put := func() {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := s.servers.Put(pctx, s.tag, b); err != nil && ctx.Err() == nil {
			s.log.Warn("s3 server not registered: parts sent to other gateways for its uploads will wait", "err", err)
		}
	}
	put()
	t := time.NewTicker(registryEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = s.servers.Delete(dctx, s.tag)
			cancel()
			return
		case <-t.C:
			put()
		}
	}
}

// forwarder sends requests to other servers of the cluster.
type forwarder struct {
	mu sync.Mutex
	tr map[string]*http.Transport // owner's address → its transport
}

// transport dials addr whatever host a request names, so that the
// request keeps its own Host (which its signature covers, and which TLS
// checks the owner's certificate against).
func (f *forwarder) transport(addr string, tc *tls.Config) *http.Transport {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tr[addr]; t != nil {
		return t
	}
	if f.tr == nil {
		f.tr = map[string]*http.Transport{}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig:       tc,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // Complete may take a while: the request's context bounds it
		DisableCompression:    true,
	}
	f.tr[addr] = t
	return t
}

func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tr {
		t.CloseIdleConnections()
	}
}

// hopHeaders are not forwarded (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Upgrade", "Proxy-Authorization"}

// forward sends r, as it came, to the server whose tag is owner, and
// copies its answer back.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, owner string) error {
	if r.Header.Get(HeaderForwarded) != "" {
		// Forwarded here for an upload this server does not hold: the
		// registry disagrees with the id. Never forwarded twice.
		return ErrNoSuchUpload
	}
	resp, err := s.send(r, owner)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if strings.EqualFold(k, "Connection") || strings.EqualFold(k, "Keep-Alive") {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
	return nil
}

// send sends r, as it came, to the server whose tag is owner.
func (s *Server) send(r *http.Request, owner string) (*http.Response, error) {
	e, err := s.servers.Get(r.Context(), owner)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.log.Info("s3 upload's server is not registered", "owner", owner)
		return nil, ErrOwnerUnavailable
	}
	if err != nil {
		return nil, fmt.Errorf("s3api: upload's server: %w", err)
	}
	var se serverEntry
	if err := json.Unmarshal(e.Value(), &se); err != nil || serverTag(se.Name) != owner {
		return nil, ErrOwnerUnavailable
	}
	u, err := url.Parse(se.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ErrOwnerUnavailable
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	tc := s.cfg.ForwardTLS
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	target := &url.URL{Scheme: u.Scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target.String(), r.Body)
	if err != nil {
		return nil, fmt.Errorf("s3api: forward: %w", err)
	}
	out.Header = r.Header.Clone()
	for _, h := range hopHeaders {
		out.Header.Del(h)
	}
	out.Header.Set(HeaderForwarded, s.cfg.Name)
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	resp, err := s.fwd.transport(addr, tc).RoundTrip(out)
	if err != nil {
		if r.Context().Err() != nil {
			return nil, r.Context().Err()
		}
		s.log.Warn("s3 request not forwarded to the upload's server", "owner", se.Name, "url", se.URL, "err", err)
		return nil, ErrOwnerUnavailable
	}
	return resp, nil
}

// peerUploads asks every other server of the cluster for the uploads
// r lists (ListMultipartUploads, a GET: the same signed request goes to
// each, and each checks it). A server that does not answer is left out
// and logged.
func (s *Server) peerUploads(r *http.Request) []uploadXML {
	if r.Header.Get(HeaderForwarded) != "" {
		return nil // a peer's own request: this server's uploads only
	}
	lister, err := s.servers.ListKeys(r.Context())
	if err != nil {
		s.log.Warn("s3 cluster's servers not listed: uploads of other gateways left out", "err", err)
		return nil
	}
	var out []uploadXML
	for tag := range lister.Keys() {
		if tag == s.tag {
			continue
		}
		resp, err := s.send(r, tag)
		if err != nil {
			continue
		}
		var res listMultipartUploadsResult
		err = xml.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&res)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || err != nil {
			s.log.Warn("s3 uploads of another gateway left out", "server", tag, "status", resp.StatusCode, "err", err)
			continue
		}
		out = append(out, res.Uploads...)
	}
	return out
}
