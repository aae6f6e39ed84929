package receiptstore_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
	"github.com/verity-cdn/verity/internal/receiptstore"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func key(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

var node = func() payment.NodeKey {
	var k payment.NodeKey
	copy(k[:], key("node").Public().(ed25519.PublicKey))
	return k
}()

// session is one worker session with its voucher, signing receipts.
type session struct {
	signer  *payment.Signer
	voucher payment.Voucher
}

func newSession(t testing.TB, account string, i int) *session {
	t.Helper()
	seed := sha256.Sum256([]byte(account + strconv.Itoa(i)))
	s, err := payment.NewSigner(payment.SignerConfig{Rand: bytes.NewReader(seed[:]), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	v := payment.Voucher{Account: account, Session: s.SessionKey(), Budget: 1 << 40, NodeCap: 1 << 40,
		Nodes: []payment.NodeTag{payment.TagOf(node)}, Expires: t0.Add(time.Hour)}
	if err := v.Sign(key("gateway")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVoucher(v); err != nil {
		t.Fatal(err)
	}
	return &session{signer: s, voucher: v}
}

func (s *session) next(t testing.TB) payment.Receipt {
	t.Helper()
	r, ok, err := s.signer.Verified(node, payment.BlockSize)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	return r
}

func open(t testing.TB, dir string) *receiptstore.Store {
	t.Helper()
	st, err := receiptstore.Open(receiptstore.Config{Dir: dir, Logger: quiet(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPutReopen(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	a, b := newSession(t, "acme", 1), newSession(t, "beta", 1)
	for _, s := range []*session{a, b} {
		if err := st.PutVoucher(s.voucher); err != nil {
			t.Fatal(err)
		}
		if err := st.PutVoucher(s.voucher); err != nil {
			t.Fatalf("same voucher again: %v", err)
		}
	}
	var latest payment.Receipt
	for i := 0; i < 5; i++ {
		latest = a.next(t)
		if err := st.PutReceipt(latest); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.PutReceipt(b.next(t))
	if err := st.MarkSettled(a.voucher.Session, 2*payment.BlockSize); err != nil {
		t.Fatal(err)
	}
	if got := st.Uncommitted(); got["acme"] != 3*payment.BlockSize || got["beta"] != payment.BlockSize {
		t.Fatalf("uncommitted %v", got)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := st.PutReceipt(latest); !errors.Is(err, receiptstore.ErrClosed) {
		t.Fatalf("put after close: %v", err)
	}

	st = open(t, dir)
	defer st.Close()
	e, ok := st.Get(a.voucher.Session)
	if !ok || e.Receipt != latest || e.Settled != 2*payment.BlockSize || e.Voucher.ID() != a.voucher.ID() {
		t.Fatalf("reopened entry %+v", e)
	}
	if u := st.Unsettled("acme"); len(u) != 1 || u[0].Unsettled() != 3*payment.BlockSize {
		t.Fatalf("unsettled %+v", u)
	}
}

func TestRefusals(t *testing.T) {
	st := open(t, t.TempDir())
	defer st.Close()
	a := newSession(t, "acme", 1)
	if err := st.PutReceipt(a.next(t)); !errors.Is(err, receiptstore.ErrUnknownSession) {
		t.Fatalf("receipt before voucher: %v", err)
	}
	_ = st.PutVoucher(a.voucher)
	other := a.voucher
	other.Budget++
	_ = other.Sign(key("gateway"))
	if err := st.PutVoucher(other); !errors.Is(err, payment.ErrWrongSession) {
		t.Fatalf("second voucher: %v", err)
	}
	r2 := a.next(t)
	_ = st.PutReceipt(r2)
	r1 := r2
	r1.Seq, r1.Bytes = 1, 1 // older: ignored
	if err := st.PutReceipt(r1); err != nil {
		t.Fatal(err)
	}
	if e, _ := st.Get(a.voucher.Session); e.Receipt != r2 {
		t.Fatal("older receipt replaced the latest")
	}
	if _, err := receiptstore.Open(receiptstore.Config{Dir: "", Logger: quiet()}); err == nil {
		t.Fatal("no dir accepted")
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	defer st.Close()
	if _, err := receiptstore.Open(receiptstore.Config{Dir: dir, Logger: quiet()}); !errors.Is(err, receiptstore.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
}

func TestTornTail(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	a := newSession(t, "acme", 1)
	_ = st.PutVoucher(a.voucher)
	r := a.next(t)
	_ = st.PutReceipt(r)
	st.Close()
	path := filepath.Join(dir, "receipts.log")
	data, _ := os.ReadFile(path)
	// A half-written record at the end, then garbage.
	_ = os.WriteFile(path, append(data, data[len(data)-100:len(data)-40]...), 0o600)
	st = open(t, dir)
	if e, _ := st.Get(a.voucher.Session); e.Receipt != r {
		t.Fatal("receipt lost with the torn tail")
	}
	r2 := a.next(t)
	if err := st.PutReceipt(r2); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = open(t, dir)
	defer st.Close()
	if e, _ := st.Get(a.voucher.Session); e.Receipt != r2 {
		t.Fatal("receipt written after the cut is lost")
	}
}

func TestCompact(t *testing.T) {
	dir := t.TempDir()
	now := t0
	st, err := receiptstore.Open(receiptstore.Config{Dir: dir, Logger: quiet(), Now: func() time.Time { return now }, Retain: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a, b := newSession(t, "acme", 1), newSession(t, "acme", 2)
	_ = st.PutVoucher(a.voucher)
	_ = st.PutVoucher(b.voucher)
	var la, lb payment.Receipt
	for i := 0; i < 50; i++ {
		la, lb = a.next(t), b.next(t)
		_ = st.PutReceipt(la)
		_ = st.PutReceipt(lb)
	}
	_ = st.MarkSettled(b.voucher.Session, lb.Bytes)
	path := filepath.Join(dir, "receipts.log")
	before, _ := os.Stat(path)
	if err := st.Compact(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size() >= before.Size()/10 {
		t.Fatalf("log %d -> %d bytes", before.Size(), after.Size())
	}
	// b is settled but its voucher has not expired long enough: kept.
	if st.Len() != 2 {
		t.Fatalf("%d sessions after compaction", st.Len())
	}
	now = b.voucher.Expires.Add(2 * time.Hour)
	_ = st.Compact()
	if st.Len() != 1 {
		t.Fatalf("settled, expired session kept: %d", st.Len())
	}
	la = a.next(t)
	_ = st.PutReceipt(la)
	st.Close()
	st = open(t, dir)
	defer st.Close()
	if e, _ := st.Get(a.voucher.Session); e.Receipt != la {
		t.Fatal("latest receipt lost by compaction")
	}
}

func TestCreditWindow(t *testing.T) {
	var w receiptstore.CreditWindow
	const blk = payment.BlockSize
	cases := []struct {
		delivered, receipted, next uint64
		want                       bool
	}{
		{0, 0, blk, true},
		{3 * blk, 0, blk, true},
		{4 * blk, 0, blk, false},
		{4 * blk, blk, blk, true},
		{4*blk + 1, blk, blk, false},
		{blk, 2 * blk, blk, true}, // receipts ahead of delivery count as none unreceipted
	}
	for _, c := range cases {
		if got := w.MaySend(c.delivered, c.receipted, c.next); got != c.want {
			t.Errorf("MaySend(%d, %d, %d) = %v", c.delivered, c.receipted, c.next, got)
		}
	}
	if (receiptstore.CreditWindow{Bytes: blk}).MaySend(blk, 0, 1) {
		t.Error("one-block window let a second block out")
	}
}

const childEnv = "VERITY_RECEIPTSTORE_KILL_DIR"

// TestKillChild runs only as the child of TestKill9: it writes receipts
// as fast as it can, printing the sequence of each one stored, until it
// is killed.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("child of TestKill9 only")
	}
	// No fsync at all: a killed process must not need it.
	st, err := receiptstore.Open(receiptstore.Config{Dir: dir, SyncInterval: time.Hour, Logger: quiet(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	sessions := make([]*session, 4)
	for i := range sessions {
		sessions[i] = newSession(t, "acme", i)
		if err := st.PutVoucher(sessions[i].voucher); err != nil {
			t.Fatal(err)
		}
	}
	for n := 0; ; n++ {
		s := sessions[n%len(sessions)]
		r := s.next(t)
		if err := st.PutReceipt(r); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("stored %d %d\n", n%len(sessions), r.Seq)
		if n%64 == 63 {
			if err := st.Compact(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make([]uint64, 4) // highest seq the child reported stored, per session
	sc := bufio.NewScanner(out)
	lines := 0
	for sc.Scan() && lines < 300 {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "stored" {
			continue
		}
		i, _ := strconv.Atoi(f[1])
		seq, _ := strconv.ParseUint(f[2], 10, 64)
		acked[i] = seq
		lines++
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, out) // let the child's last writes drain
	_ = cmd.Wait()
	if lines < 300 {
		t.Fatalf("child stopped after %d receipts", lines)
	}

	st := open(t, dir)
	defer st.Close()
	for i := range acked {
		s := newSession(t, "acme", i)
		e, ok := st.Get(s.voucher.Session)
		if !ok || e.Receipt.Seq < acked[i] {
			t.Fatalf("session %d: child stored seq %d, store has %d", i, acked[i], e.Receipt.Seq)
		}
		if err := e.Receipt.Verify(&s.voucher, s.voucher.ID(), node); err != nil {
			t.Fatalf("session %d: stored receipt does not verify: %v", i, err)
		}
	}
	t.Logf("killed after %d acknowledged receipts; latest per session %v present", lines, acked)
}

// A log written before vouchers named their nodes holds version 1
// vouchers, which nothing accepts any more: reopening drops those
// sessions (the ledger would refuse them) and keeps the others.
func TestOldVouchersDropped(t *testing.T) {
	dir := t.TempDir()
	st := open(t, dir)
	old, cur := newSession(t, "acme", 1), newSession(t, "acme", 2)
	_ = st.PutVoucher(old.voucher)
	_ = st.PutReceipt(old.next(t))
	_ = st.PutVoucher(cur.voucher)
	r := cur.next(t)
	_ = st.PutReceipt(r)
	st.Close()
	path := filepath.Join(dir, "receipts.log")
	data, _ := os.ReadFile(path)
	// The first record is old's voucher: make it version 1.
	n := binary.BigEndian.Uint32(data)
	data[9] = 1
	binary.BigEndian.PutUint32(data[4:], crc32.Checksum(data[8:8+n], crc32.MakeTable(crc32.Castagnoli)))
	_ = os.WriteFile(path, data, 0o600)
	st = open(t, dir)
	defer st.Close()
	if _, ok := st.Get(old.voucher.Session); ok {
		t.Fatal("session of a version 1 voucher kept")
	}
	if e, ok := st.Get(cur.voucher.Session); !ok || e.Receipt != r {
		t.Fatalf("other session %+v, %v", e, ok)
	}
}
