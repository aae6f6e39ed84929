package receiptstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/verity-cdn/verity/internal/payment"
)

const (
	logName  = "receipts.log"
	tmpName  = "receipts.log.tmp"
	lockName = "LOCK"
)

// Entry is what a node holds for one session.
type Entry struct {
	Voucher payment.Voucher
	Receipt payment.Receipt // latest; Seq 0 when none yet
	Settled uint64          // bytes the ledger confirmed settled
}

// Unsettled is the receipted bytes not yet settled.
func (e Entry) Unsettled() uint64 {
	if e.Receipt.Bytes <= e.Settled {
		return 0
	}
	return e.Receipt.Bytes - e.Settled
}

// Store is a durable map from session key to the latest receipt of that
// session, with its voucher and the bytes already settled. Every change is
// appended to one log file with a single write before the call returns; a
// background goroutine fsyncs it every SyncInterval and compacts it.
// Safe for concurrent use.
type Store struct {
	cfg Config
	log *slog.Logger

	lock *os.File

	mu       sync.Mutex
	f        *os.File
	size     int64 // bytes in the log
	live     int64 // bytes a compacted log would hold
	dirty    bool
	closed   bool
	sessions map[payment.SessionKey]*Entry
	buf      []byte

	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Open opens (or creates) the store in cfg.Dir and replays its log. A
// record torn by a crash at the end of the log is dropped.
func Open(cfg Config) (*Store, error) {
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("receiptstore: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("receiptstore: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		return nil, err
	}
	s := &Store{cfg: cfg, log: cfg.Logger.With("component", "receiptstore"), lock: lock,
		sessions: make(map[payment.SessionKey]*Entry)}
	if err := s.replay(); err != nil {
		lock.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go s.run(ctx)
	return s, nil
}

func (s *Store) replay() error {
	_ = os.Remove(filepath.Join(s.cfg.Dir, tmpName)) // an interrupted compaction
	path := filepath.Join(s.cfg.Dir, logName)
	data, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("receiptstore: %w", err)
	}
	off := 0
	for off < len(data) {
		typ, payload, n, ok := nextRecord(data[off:])
		if !ok {
			break
		}
		if err := s.apply(typ, payload); err != nil {
			return fmt.Errorf("receiptstore: record at %d: %w", off, err)
		}
		off += n
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("receiptstore: %w", err)
	}
	if off < len(data) {
		s.log.Warn("dropping damaged log tail", "offset", off, "bytes", len(data)-off)
		if err := f.Truncate(int64(off)); err != nil {
			f.Close()
			return fmt.Errorf("receiptstore: %w", err)
		}
	}
	if _, err := f.Seek(int64(off), 0); err != nil {
		f.Close()
		return fmt.Errorf("receiptstore: %w", err)
	}
	s.f, s.size = f, int64(off)
	s.live = s.liveBytes()
	return nil
}

// apply replays one record into the map.
func (s *Store) apply(typ byte, payload []byte) error {
	switch typ {
	case recVoucher:
		v, err := payment.ParseVoucher(payload)
		if errors.Is(err, payment.ErrOldVoucher) {
			// Kept by an earlier version: the ledger refuses to settle
			// it, so its session (and receipts) is dropped.
			return nil
		}
		if err != nil {
			return err
		}
		if s.sessions[v.Session] == nil {
			s.sessions[v.Session] = &Entry{Voucher: v}
		}
	case recReceipt:
		r, err := payment.ParseReceipt(payload)
		if err != nil {
			return err
		}
		if e := s.sessions[r.Session]; e != nil && r.Seq > e.Receipt.Seq {
			e.Receipt = r
		}
	case recSettled:
		if len(payload) != 40 {
			return payment.ErrMalformed
		}
		var k payment.SessionKey
		copy(k[:], payload)
		if e := s.sessions[k]; e != nil {
			e.Settled = max(e.Settled, binary.BigEndian.Uint64(payload[32:]))
		}
	default:
		return payment.ErrMalformed
	}
	return nil
}

// writeLocked appends records with one write call; s.mu is held.
func (s *Store) writeLocked(b []byte) error {
	if s.closed {
		return ErrClosed
	}
	if _, err := s.f.Write(b); err != nil {
		// A partial write leaves a torn record; cut it so later records
		// stay readable.
		_ = s.f.Truncate(s.size)
		_, _ = s.f.Seek(s.size, 0)
		return fmt.Errorf("receiptstore: write: %w", err)
	}
	s.size += int64(len(b))
	s.dirty = true
	if s.cfg.SyncInterval < 0 {
		if err := s.f.Sync(); err != nil {
			return fmt.Errorf("receiptstore: sync: %w", err)
		}
		s.dirty = false
	}
	return nil
}

// PutVoucher records the voucher of a session the node admitted. Storing
// the same voucher again does nothing; another voucher for a session key
// already stored is refused with payment.ErrWrongSession.
func (s *Store) PutVoucher(v payment.Voucher) error {
	enc, err := v.MarshalBinary()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if e := s.sessions[v.Session]; e != nil {
		if e.Voucher.ID() != v.ID() {
			return &payment.Error{Op: "store", Field: "voucher", Err: payment.ErrWrongSession}
		}
		return nil
	}
	s.buf = appendRecord(s.buf[:0], recVoucher, enc)
	if err := s.writeLocked(s.buf); err != nil {
		return err
	}
	s.sessions[v.Session] = &Entry{Voucher: v}
	s.live += int64(len(s.buf))
	return nil
}

// PutReceipt records r as its session's latest receipt, if it is newer
// (higher Seq) than the stored one; an older or equal one is ignored. The
// node has verified r (payment.Tracker) before. When PutReceipt returns
// nil the receipt survives the process being killed.
func (s *Store) PutReceipt(r payment.Receipt) error {
	var enc [payment.ReceiptBytes]byte
	b, err := r.AppendBinary(enc[:0])
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	e := s.sessions[r.Session]
	if e == nil {
		return ErrUnknownSession
	}
	if r.Seq <= e.Receipt.Seq {
		return nil
	}
	had := e.Receipt.Seq != 0
	s.buf = appendRecord(s.buf[:0], recReceipt, b)
	if err := s.writeLocked(s.buf); err != nil {
		return err
	}
	e.Receipt = r
	if !had {
		s.live += int64(len(s.buf))
	}
	return nil
}

// MarkSettled records that the ledger settled the session up to bytes.
func (s *Store) MarkSettled(session payment.SessionKey, bytes uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	e := s.sessions[session]
	if e == nil {
		return ErrUnknownSession
	}
	if bytes <= e.Settled {
		return nil
	}
	var p [40]byte
	copy(p[:], session[:])
	binary.BigEndian.PutUint64(p[32:], bytes)
	had := e.Settled != 0
	s.buf = appendRecord(s.buf[:0], recSettled, p[:])
	if err := s.writeLocked(s.buf); err != nil {
		return err
	}
	e.Settled = bytes
	if !had {
		s.live += int64(len(s.buf))
	}
	return nil
}

// Get returns the entry of a session.
func (s *Store) Get(session payment.SessionKey) (Entry, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.sessions[session]
	if e == nil {
		return Entry{}, false
	}
	return *e, true
}

// Len is the number of sessions held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Unsettled returns the entries of account with unsettled bytes, ordered
// by session key: the items of the node's next settlement batch.
func (s *Store) Unsettled(account string) []Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Entry
	for _, e := range s.sessions {
		if e.Voucher.Account == account && e.Unsettled() > 0 {
			out = append(out, *e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return string(out[i].Voucher.Session[:]) < string(out[j].Voucher.Session[:])
	})
	return out
}

// Uncommitted returns, per account, the receipted bytes not yet settled:
// the input of the node's settlement policy.
func (s *Store) Uncommitted() map[string]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]uint64)
	for _, e := range s.sessions {
		if u := e.Unsettled(); u > 0 {
			out[e.Voucher.Account] += u
		}
	}
	return out
}

// Sync fsyncs the log.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncLocked()
}

func (s *Store) syncLocked() error {
	if s.closed {
		return ErrClosed
	}
	if !s.dirty {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("receiptstore: sync: %w", err)
	}
	s.dirty = false
	return nil
}

func (s *Store) run(ctx context.Context) {
	defer s.wg.Done()
	every := s.cfg.SyncInterval
	if every <= 0 {
		every = time.Second // compaction checks only
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		if !s.closed {
			if err := s.syncLocked(); err != nil {
				s.log.Error("sync failed", "err", err)
			}
			if s.size > s.cfg.CompactMinBytes && s.size > int64(s.cfg.CompactRatio)*s.live {
				if err := s.compactLocked(); err != nil {
					s.log.Error("compaction failed", "err", err)
				}
			}
		}
		s.mu.Unlock()
	}
}

// Compact rewrites the log with one record per live fact, dropping
// sessions that are fully settled and whose voucher expired more than
// Retain ago. The new log is written aside, fsynced and renamed over the
// old one, so a crash at any point leaves one complete log.
func (s *Store) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return s.compactLocked()
}

func (s *Store) compactLocked() error {
	cutoff := s.cfg.Now().Add(-s.cfg.Retain)
	for k, e := range s.sessions {
		if e.Unsettled() == 0 && e.Voucher.Expires.Before(cutoff) {
			delete(s.sessions, k)
		}
	}
	snap := s.snapshot()
	tmp := filepath.Join(s.cfg.Dir, tmpName)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("receiptstore: compact: %w", err)
	}
	_, err = f.Write(snap)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.cfg.Dir, logName))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("receiptstore: compact: %w", err)
	}
	syncDir(s.cfg.Dir)
	nf, err := os.OpenFile(filepath.Join(s.cfg.Dir, logName), os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("receiptstore: compact: %w", err)
	}
	if _, err := nf.Seek(int64(len(snap)), 0); err != nil {
		nf.Close()
		return fmt.Errorf("receiptstore: compact: %w", err)
	}
	s.f.Close()
	s.f, s.size, s.live, s.dirty = nf, int64(len(snap)), int64(len(snap)), false
	return nil
}

// snapshot encodes every live entry.
func (s *Store) snapshot() []byte {
	var b []byte
	for k, e := range s.sessions {
		vb, _ := e.Voucher.MarshalBinary()
		b = appendRecord(b, recVoucher, vb)
		if e.Receipt.Seq != 0 {
			rb, _ := e.Receipt.MarshalBinary()
			b = appendRecord(b, recReceipt, rb)
		}
		if e.Settled != 0 {
			var p [40]byte
			copy(p[:], k[:])
			binary.BigEndian.PutUint64(p[32:], e.Settled)
			b = appendRecord(b, recSettled, p[:])
		}
	}
	return b
}

func (s *Store) liveBytes() int64 { return int64(len(s.snapshot())) }

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Close fsyncs the log, stops the background goroutine and releases the
// directory. It is idempotent.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
		s.mu.Lock()
		err = s.syncLocked()
		s.closed = true
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
		s.mu.Unlock()
		s.lock.Close()
	})
	return err
}

// SettledTotal is the bytes the ledger settled over the sessions held.
func (s *Store) SettledTotal() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t uint64
	for _, e := range s.sessions {
		t += e.Settled
	}
	return t
}
