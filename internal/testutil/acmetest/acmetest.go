// Package acmetest runs Pebble, the ACME test server, for tests: a real
// ACME CA on loopback that validates challenges against the listeners
// under test, with a DNS server that answers every name with 127.0.0.1 and
// is authoritative for the zone verity.test, whose TXT records RFC 2136
// updates signed with its TSIG key set (for DNS-01 challenges).
//
//	ca := acmetest.Start(t, acmetest.Config{HTTPPort: hp, TLSPort: tp})
//	// ca.Directory: the ACME directory URL; ca.APIRootFile: trust for
//	// its HTTPS API; ca.Roots(t): the roots its certificates chain to.
//
// Pebble is built with `go tool pebble` (a tool of this module, so its
// version is pinned in go.mod).
package acmetest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/verity-cdn/verity/internal/testutil"
	"github.com/verity-cdn/verity/internal/testutil/certtest"
)

// Config says where Pebble validates challenges.
type Config struct {
	// HTTPPort and TLSPort are the ports on 127.0.0.1 where Pebble
	// validates HTTP-01 and TLS-ALPN-01 challenges: the plain and TLS
	// listeners under test.
	HTTPPort, TLSPort int
}

// CA is a running Pebble.
type CA struct {
	// Directory is the ACME directory URL.
	Directory string
	// APIRootFile is a PEM file with the certificate of Pebble's own
	// HTTPS API (self-signed): an ACME client must trust it.
	APIRootFile string
	// APIRoots is the same certificate as a pool.
	APIRoots *x509.CertPool

	// DNS is the address (host:port, UDP and TCP) of the DNS server
	// Pebble asks: authoritative for Zone, updated by RFC 2136 signed
	// with TSIGKeyName and TSIGSecret (hmac-sha256).
	DNS        string
	TSIGSecret string

	mgmt string // management API base URL
	stop func()
	zone *zoneData
}

// Stop stops Pebble before the test ends (e.g. to show that certificates
// already obtained are served without it).
func (ca *CA) Stop() { ca.stop() }

var buildOnce sync.Once
var buildErr error
var binPath string

// build compiles Pebble once per test binary.
func build(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "verity-pebble-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "pebble")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			goBin = "go"
		}
		cmd := exec.Command(goBin, "build", "-o", binPath, "github.com/letsencrypt/pebble/v2/cmd/pebble")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build pebble: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Start runs Pebble and its DNS server until the test ends.
func Start(t testing.TB, cfg Config) *CA {
	t.Helper()
	bin := build(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")
	pool := certtest.SelfSigned(t, certFile, keyFile, "localhost") // Pebble's API
	var key [32]byte
	_, _ = rand.Read(key[:])
	secret := base64.StdEncoding.EncodeToString(key[:])
	zone := &zoneData{txt: map[string][]string{}}
	dnsAddr := startDNS(t, secret, zone)
	// Pebble's ports were free a moment before it binds them; another
	// test may take one meanwhile, and Pebble then exits: start it again
	// on others.
	for try := 1; ; try++ {
		ca, exitedEarly := launch(t, bin, dir, certFile, keyFile, pool, secret, dnsAddr, zone, cfg)
		if !exitedEarly {
			return ca
		}
		if try == 5 {
			t.Fatal("pebble exited at start five times (see its log)")
		}
	}
}

// launch starts Pebble on two fresh ports and waits for its directory. It
// reports exitedEarly when Pebble exited before answering (a port taken).
func launch(t testing.TB, bin, dir, certFile, keyFile string, pool *x509.CertPool, secret, dnsAddr string,
	zone *zoneData, cfg Config) (*CA, bool) {
	t.Helper()
	apiPort, mgmtPort := testutil.FreePort(t), testutil.FreePort(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  "127.0.0.1:" + strconv.Itoa(apiPort),
		"managementListenAddress":        "127.0.0.1:" + strconv.Itoa(mgmtPort),
		"certificate":                    certFile,
		"privateKey":                     keyFile,
		"httpPort":                       cfg.HTTPPort,
		"tlsPort":                        cfg.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "test", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble-"+strconv.Itoa(apiPort)+".json")
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", confFile, "-dnsserver", dnsAddr)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	logf, err := os.CreateTemp(dir, "pebble-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
	}
	t.Cleanup(func() {
		stop()
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("pebble log:\n%s", b)
			}
		}
	})
	ca := &CA{
		Directory:   "https://127.0.0.1:" + strconv.Itoa(apiPort) + "/dir",
		APIRootFile: certFile,
		APIRoots:    pool,
		DNS:         dnsAddr,
		TSIGSecret:  secret,
		mgmt:        "https://127.0.0.1:" + strconv.Itoa(mgmtPort),
		stop:        stop,
		zone:        zone,
	}
	// Up once its directory answers.
	c := ca.client()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := c.Get(ca.Directory)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case <-exited:
			t.Logf("pebble exited at start; starting it again on other ports")
			return nil, true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pebble did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return ca, false
}

func (ca *CA) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.APIRoots}}}
}

// RootsPEM returns the PEM of the roots Pebble's certificates chain to
// (they are made anew each time Pebble starts).
func (ca *CA) RootsPEM(t testing.TB) []byte {
	t.Helper()
	resp, err := ca.client().Get(ca.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("pebble roots: %d %v", resp.StatusCode, err)
	}
	return b
}

// Roots returns RootsPEM as a pool.
func (ca *CA) Roots(t testing.TB) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(ca.RootsPEM(t)) {
		t.Fatal("pebble roots: no certificate")
	}
	return p
}

// Zone is the zone the test DNS server is authoritative for: it answers
// its SOA and takes RFC 2136 updates of TXT records in it, signed with the
// CA's TSIG key.
const Zone = "verity.test."

// TSIGKeyName is the name of the key that signs updates.
const TSIGKeyName = "verity-acme."

// zoneData is the test DNS server's TXT records, by lower-case FQDN.
type zoneData struct {
	mu  sync.Mutex
	txt map[string][]string
	// updates counts the updates applied (signed and in the zone).
	updates int
}

// startDNS answers every A query with 127.0.0.1, the SOA of Zone, the TXT
// records updates put in it, and every other query with no records, on
// UDP and TCP, until the test ends. Updates (RFC 2136) must be signed with
// secret (TSIG, hmac-sha256); others are refused.
func startDNS(t testing.TB, secret string, z *zoneData) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if r.Opcode == dns.OpcodeUpdate {
			tsig := r.IsTsig()
			switch {
			case tsig == nil || w.TsigStatus() != nil:
				m.Rcode = dns.RcodeNotAuth
			case len(r.Question) != 1 || !strings.EqualFold(r.Question[0].Name, Zone):
				m.Rcode = dns.RcodeNotZone
			default:
				z.mu.Lock()
				for _, rr := range r.Ns {
					txt, ok := rr.(*dns.TXT)
					name := strings.ToLower(rr.Header().Name)
					if !ok || !dns.IsSubDomain(Zone, name) {
						continue
					}
					val := strings.Join(txt.Txt, "")
					switch rr.Header().Class {
					case dns.ClassINET:
						z.txt[name] = append(z.txt[name], val)
					case dns.ClassNONE:
						vs := z.txt[name][:0]
						for _, v := range z.txt[name] {
							if v != val {
								vs = append(vs, v)
							}
						}
						z.txt[name] = vs
					}
				}
				z.updates++
				z.mu.Unlock()
			}
			if tsig != nil && w.TsigStatus() == nil {
				m.SetTsig(tsig.Hdr.Name, tsig.Algorithm, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(m)
			return
		}
		for _, q := range r.Question {
			hdr := dns.RR_Header{Name: q.Name, Rrtype: q.Qtype, Class: dns.ClassINET, Ttl: 1}
			switch q.Qtype {
			case dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: net.IPv4(127, 0, 0, 1)})
			case dns.TypeSOA:
				if strings.EqualFold(q.Name, Zone) {
					m.Answer = append(m.Answer, &dns.SOA{Hdr: hdr, Ns: "ns." + Zone, Mbox: "hostmaster." + Zone,
						Serial: 1, Refresh: 60, Retry: 60, Expire: 600, Minttl: 1})
				}
			case dns.TypeTXT:
				z.mu.Lock()
				for _, v := range z.txt[strings.ToLower(q.Name)] {
					m.Answer = append(m.Answer, &dns.TXT{Hdr: hdr, Txt: []string{v}})
				}
				z.mu.Unlock()
			}
		}
		_ = w.WriteMsg(m)
	})
	secrets := map[string]string{TSIGKeyName: secret}
	// One port for UDP and TCP: the UDP port the system picks may be
	// taken for TCP (another test's connection), so pick again then.
	var (
		pc   net.PacketConn
		ln   net.Listener
		addr string
	)
	for try := 1; ; try++ {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		addr = pc.LocalAddr().String()
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		pc.Close()
		if try == 20 {
			t.Fatal(err)
		}
	}
	// miekg/dns answers NOTIMP to updates unless told to take them.
	accept := func(dh dns.Header) dns.MsgAcceptAction {
		if int(dh.Bits>>11)&0xF == dns.OpcodeUpdate && dh.Qdcount == 1 {
			return dns.MsgAccept
		}
		return dns.DefaultMsgAcceptFunc(dh)
	}
	us := &dns.Server{PacketConn: pc, Handler: h, TsigSecret: secrets, MsgAcceptFunc: accept}
	ts := &dns.Server{Listener: ln, Handler: h, TsigSecret: secrets, MsgAcceptFunc: accept}
	go us.ActivateAndServe()
	go ts.ActivateAndServe()
	t.Cleanup(func() {
		us.Shutdown()
		ts.Shutdown()
	})
	return addr
}

// TXT returns the TXT records the test DNS server holds for name.
func (ca *CA) TXT(name string) []string {
	ca.zone.mu.Lock()
	defer ca.zone.mu.Unlock()
	return append([]string(nil), ca.zone.txt[strings.ToLower(dns.Fqdn(name))]...)
}

// Updates is the number of signed updates the test DNS server applied.
func (ca *CA) Updates() int {
	ca.zone.mu.Lock()
	defer ca.zone.mu.Unlock()
	return ca.zone.updates
}

// HostDialer dials 127.0.0.1 at addr's port whatever its host, as if every
// name resolved to loopback (for clients of names like demo.verity.test).
func HostDialer(network, addr string) (net.Conn, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	return net.Dial(network, net.JoinHostPort("127.0.0.1", port))
}
