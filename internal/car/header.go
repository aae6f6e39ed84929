package car

import (
	"github.com/verity-cdn/verity/internal/cid"
)

// CBOR major types.
const (
	cborUint   = 0
	cborNeg    = 1
	cborBytes  = 2
	cborText   = 3
	cborArray  = 4
	cborMap    = 5
	cborTag    = 6
	cborSimple = 7

	tagCID        = 42
	maxCBORDepth  = 16
	maxHeaderRoot = 1024
)

type cborDec struct {
	b   []byte
	off int
}

// head reads a CBOR item head: major type and argument.
func (d *cborDec) head() (major byte, arg uint64, err error) {
	if d.off >= len(d.b) {
		return 0, 0, malformed("header: unexpected end of CBOR")
	}
	ib := d.b[d.off]
	d.off++
	major = ib >> 5
	ai := ib & 0x1f
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai <= 27:
		n := 1 << (ai - 24)
		if len(d.b)-d.off < n {
			return 0, 0, malformed("header: unexpected end of CBOR")
		}
		for i := 0; i < n; i++ {
			arg = arg<<8 | uint64(d.b[d.off+i])
		}
		d.off += n
		return major, arg, nil
	default:
		return 0, 0, malformed("header: indefinite or reserved CBOR length")
	}
}

func (d *cborDec) bytesOf(n uint64) ([]byte, error) {
	if n > uint64(len(d.b)-d.off) {
		return nil, malformed("header: CBOR string past end")
	}
	s := d.b[d.off : d.off+int(n)]
	d.off += int(n)
	return s, nil
}

// skip skips one complete item.
func (d *cborDec) skip(depth int) error {
	if depth > maxCBORDepth {
		return malformed("header: CBOR nested too deeply")
	}
	major, arg, err := d.head()
	if err != nil {
		return err
	}
	switch major {
	case cborUint, cborNeg, cborSimple:
		return nil
	case cborBytes, cborText:
		_, err := d.bytesOf(arg)
		return err
	case cborArray, cborMap:
		n := arg
		if major == cborMap {
			if n > uint64(len(d.b)) {
				return malformed("header: CBOR map too long")
			}
			n *= 2
		}
		if n > uint64(len(d.b)) {
			return malformed("header: CBOR array too long")
		}
		for i := uint64(0); i < n; i++ {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case cborTag:
		return d.skip(depth + 1)
	}
	return malformed("header: bad CBOR")
}

func (d *cborDec) cid() (cid.CID, error) {
	major, arg, err := d.head()
	if err != nil {
		return cid.CID{}, err
	}
	if major != cborTag || arg != tagCID {
		return cid.CID{}, malformed("header: root is not a tag-42 CID")
	}
	major, arg, err = d.head()
	if err != nil {
		return cid.CID{}, err
	}
	if major != cborBytes {
		return cid.CID{}, malformed("header: CID is not a byte string")
	}
	b, err := d.bytesOf(arg)
	if err != nil {
		return cid.CID{}, err
	}
	if len(b) < 2 || b[0] != 0x00 {
		return cid.CID{}, malformed("header: CID without the 0x00 multibase prefix")
	}
	c, n, err := cid.Decode(b[1:])
	if err != nil {
		return cid.CID{}, malformed("header: root CID: %v", err)
	}
	if n != len(b)-1 {
		return cid.CID{}, malformed("header: trailing bytes after root CID")
	}
	return c, nil
}

// decodeHeader decodes the dag-cbor CARv1 header.
func decodeHeader(b []byte) ([]cid.CID, error) {
	d := &cborDec{b: b}
	major, n, err := d.head()
	if err != nil {
		return nil, err
	}
	if major != cborMap {
		return nil, malformed("header: not a CBOR map")
	}
	if n > uint64(len(b)) {
		return nil, malformed("header: CBOR map too long")
	}
	var (
		roots       []cid.CID
		haveRoots   bool
		haveVersion bool
	)
	for i := uint64(0); i < n; i++ {
		major, kl, err := d.head()
		if err != nil {
			return nil, err
		}
		if major != cborText {
			return nil, malformed("header: non-text map key")
		}
		key, err := d.bytesOf(kl)
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "version":
			if haveVersion {
				return nil, malformed("header: duplicate version")
			}
			haveVersion = true
			major, v, err := d.head()
			if err != nil {
				return nil, err
			}
			if major != cborUint || v != 1 {
				return nil, ErrVersion
			}
		case "roots":
			if haveRoots {
				return nil, malformed("header: duplicate roots")
			}
			haveRoots = true
			major, cnt, err := d.head()
			if err != nil {
				return nil, err
			}
			if major != cborArray {
				return nil, malformed("header: roots is not an array")
			}
			if cnt > maxHeaderRoot {
				return nil, malformed("header: %d roots", cnt)
			}
			for j := uint64(0); j < cnt; j++ {
				c, err := d.cid()
				if err != nil {
					return nil, err
				}
				roots = append(roots, c)
			}
		default:
			if err := d.skip(1); err != nil {
				return nil, err
			}
		}
	}
	if d.off != len(b) {
		return nil, malformed("header: trailing bytes")
	}
	if !haveVersion {
		return nil, malformed("header: no version")
	}
	if !haveRoots {
		return nil, malformed("header: no roots")
	}
	return roots, nil
}

// encodeHeader encodes {"roots": roots, "version": 1} in canonical dag-cbor.
func encodeHeader(roots []cid.CID) []byte {
	b := []byte{0xa2}
	b = appendText(b, "roots")
	b = appendHead(b, cborArray, uint64(len(roots)))
	for _, r := range roots {
		cb := r.Bytes()
		b = appendHead(b, cborTag, tagCID)
		b = appendHead(b, cborBytes, uint64(len(cb)+1))
		b = append(b, 0x00)
		b = append(b, cb...)
	}
	b = appendText(b, "version")
	return appendHead(b, cborUint, 1)
}

func appendText(b []byte, s string) []byte {
	b = appendHead(b, cborText, uint64(len(s)))
	return append(b, s...)
}

func appendHead(b []byte, major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return append(b, m|byte(arg))
	case arg <= 0xff:
		return append(b, m|24, byte(arg))
	case arg <= 0xffff:
		return append(b, m|25, byte(arg>>8), byte(arg))
	case arg <= 0xffffffff:
		return append(b, m|26, byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	default:
		return append(b, m|27, byte(arg>>56), byte(arg>>48), byte(arg>>40), byte(arg>>32),
			byte(arg>>24), byte(arg>>16), byte(arg>>8), byte(arg))
	}
}
