package payment

import (
	"io"
	"sync"
	"time"
)

// SignerConfig configures a Signer. The zero value works.
type SignerConfig struct {
	// Rand is the source of the session key. Default crypto/rand
	// (natively), crypto.getRandomValues (in the worker's wasm).
	Rand io.Reader
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// SignEvery is how many verified, unreceipted bytes from one node make
	// the Signer sign a new receipt. Default BlockSize, so with blocks of
	// at most BlockSize the worker is never more than one block behind what
	// it verified.
	SignEvery uint64
}

// Signer is the worker's side of a session: it holds the session key,
// counts the verified bytes each node delivered and signs cumulative
// receipts for them. It never signs for bytes it was not told were
// verified, nor beyond the voucher's budget (summed over nodes) or its
// per-node cap, nor for a node the voucher does not name, nor after the
// voucher expired. Safe for concurrent use.
type Signer struct {
	cfg  SignerConfig
	priv PrivateKey
	pub  SessionKey

	mu      sync.Mutex
	voucher Voucher
	vid     VoucherID
	hasV    bool
	total   uint64 // verified bytes over all nodes
	nodes   map[NodeKey]*signerNode
}

type signerNode struct {
	verified uint64
	last     Receipt // last signed; Seq 0 before the first
	every    uint64  // SignEvery for this node; 0: the config's
}

// NewSigner generates a session key.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.Rand == nil {
		cfg.Rand = defaultRand()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SignEvery == 0 {
		cfg.SignEvery = BlockSize
	}
	pub, priv, err := generateKey(cfg.Rand)
	if err != nil {
		return nil, err
	}
	s := &Signer{cfg: cfg, priv: priv, nodes: make(map[NodeKey]*signerNode)}
	copy(s.pub[:], pub)
	return s, nil
}

// SessionKey is the public key to send to the gateway, which puts it in
// the voucher.
func (s *Signer) SessionKey() SessionKey { return s.pub }

// SetVoucher installs the voucher the gateway issued for this session key.
// The worker cannot check the gateway's signature without its key, and
// need not: a bad voucher only makes nodes refuse it.
func (s *Signer) SetVoucher(v Voucher) error {
	if err := v.check(); err != nil {
		return err
	}
	if v.Session != s.pub {
		return errorf("signer", "session", ErrWrongSession)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.voucher, s.vid, s.hasV = v, v.ID(), true
	return nil
}

// Voucher returns the installed voucher.
func (s *Signer) Voucher() (Voucher, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.voucher, s.hasV
}

// Verified records n more bytes verified from node. When the bytes not yet
// receipted to that node reach SignEvery it signs and returns a receipt
// covering everything verified from it (signed true); otherwise it returns
// signed false. It refuses (ErrOverBudget, ErrExpired, ErrWrongNode,
// ErrWrongSession without a voucher) bytes it could not pay for; the worker then stops
// using nodes for this session.
func (s *Signer) Verified(node NodeKey, n uint64) (r Receipt, signed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasV {
		return r, false, errorf("signer", "voucher", ErrWrongSession)
	}
	if !s.cfg.Now().Before(s.voucher.Expires) {
		return r, false, errorf("signer", "expires", ErrExpired)
	}
	if n > s.voucher.Budget-s.total {
		return r, false, errorf("signer", "budget", ErrOverBudget)
	}
	sn := s.nodes[node]
	if sn == nil {
		if !s.voucher.Names(node) {
			return r, false, errorf("signer", "node", ErrWrongNode)
		}
		sn = &signerNode{}
		s.nodes[node] = sn
	}
	if n > s.voucher.Cap()-sn.verified {
		return r, false, errorf("signer", "nodeCap", ErrOverBudget)
	}
	s.total += n
	sn.verified += n
	every := s.cfg.SignEvery
	if sn.every > 0 {
		every = sn.every
	}
	if sn.verified-sn.last.Bytes < every {
		return r, false, nil
	}
	return s.signLocked(node, sn)
}

// SetSignEvery makes Verified sign for node once n unreceipted bytes from
// it were verified, instead of SignerConfig.SignEvery (n 0 restores
// that). A node the voucher does not name is ignored: Verified refuses
// its bytes anyway.
func (s *Signer) SetSignEvery(node NodeKey, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.nodes[node]
	if sn == nil {
		if !s.hasV || !s.voucher.Names(node) {
			return
		}
		sn = &signerNode{}
		s.nodes[node] = sn
	}
	sn.every = n
}

// Flush signs a receipt for node covering every verified byte not yet
// receipted (the end of a stream). signed is false when there is none.
func (s *Signer) Flush(node NodeKey) (r Receipt, signed bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.nodes[node]
	if sn == nil || sn.verified == sn.last.Bytes {
		return r, false, nil
	}
	return s.signLocked(node, sn)
}

// Left is how many more bytes from node the voucher can pay: what is left
// of its per-node cap for the node, and of its budget over all nodes.
// Both 0 without a voucher.
func (s *Signer) Left(node NodeKey) (nodeLeft, budgetLeft uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasV {
		return 0, 0
	}
	var verified uint64
	if sn := s.nodes[node]; sn != nil {
		verified = sn.verified
	}
	return s.voucher.Cap() - verified, s.voucher.Budget - s.total
}

// NearEnd reports whether what the voucher can still pay node is at most
// a quarter of what it could at the start: of its per-node cap for the
// node, or of its budget over all nodes. The worker then asks for the
// next voucher before this one runs out. False without a voucher.
func (s *Signer) NearEnd(node NodeKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.hasV {
		return false
	}
	var verified uint64
	if sn := s.nodes[node]; sn != nil {
		verified = sn.verified
	}
	c := s.voucher.Cap()
	return c-verified <= c/4 || s.voucher.Budget-s.total <= s.voucher.Budget/4
}

// Latest returns the last receipt signed for node.
func (s *Signer) Latest(node NodeKey) (Receipt, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sn := s.nodes[node]
	if sn == nil || sn.last.Seq == 0 {
		return Receipt{}, false
	}
	return sn.last, true
}

func (s *Signer) signLocked(node NodeKey, sn *signerNode) (Receipt, bool, error) {
	r := Receipt{Version: ReceiptVersion, Voucher: s.vid, Node: node, Bytes: sn.verified, Seq: sn.last.Seq + 1}
	if err := r.Sign(s.priv); err != nil {
		return Receipt{}, false, err
	}
	sn.last = r
	return r, true, nil
}
