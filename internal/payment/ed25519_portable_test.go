package payment

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"testing"

	"github.com/verity-cdn/verity/internal/sha512"
)

// RFC 8032 section 7.1, tests 1 to 3 and SHA(abc).
var rfc8032 = []struct{ seed, pub, msg, sig string }{
	{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
		"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
	{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
		"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
	{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
		"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	{"833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
		"ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
		"ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		"dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPortableRFC8032(t *testing.T) {
	for i, v := range rfc8032 {
		seed, pub, msg, want := unhex(t, v.seed), unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)
		priv := portableKeyFromSeed(seed)
		if !bytes.Equal(priv[32:], pub) {
			t.Errorf("%d: public key %x, want %x", i, priv[32:], pub)
		}
		var sig [signatureSize]byte
		if !portableSign(&sig, priv, msg) || !bytes.Equal(sig[:], want) {
			t.Errorf("%d: signature %x, want %x", i, sig, want)
		}
		if !portableVerify(pub, msg, want) {
			t.Errorf("%d: the RFC's signature does not verify", i)
		}
		want[5] ^= 1
		if portableVerify(pub, msg, want) {
			t.Errorf("%d: a corrupted signature verifies", i)
		}
	}
}

// stream is a deterministic byte source for keys and messages.
type stream struct{ state [64]byte }

func (s *stream) Read(p []byte) (int, error) {
	for n := 0; n < len(p); {
		s.state = sha512.Sum512(s.state[:])
		n += copy(p[n:], s.state[:])
	}
	return len(p), nil
}

// TestPortableMatchesStdlib compares keys, signatures and verdicts with
// crypto/ed25519 for random keys and messages of every length up to 300
// bytes (receipts are 129, vouchers up to 289).
func TestPortableMatchesStdlib(t *testing.T) {
	src := &stream{}
	for n := 0; n <= 300; n++ {
		msg := make([]byte, n)
		src.Read(msg)
		pub, priv, err := portableGenerateKey(src)
		if err != nil {
			t.Fatal(err)
		}
		checkAgainstStdlib(t, priv[:32], msg)
		if !bytes.Equal(pub, priv[32:]) {
			t.Fatalf("len %d: generated public key is not the private key's", n)
		}
	}
}

func checkAgainstStdlib(t *testing.T, seed, msg []byte) {
	t.Helper()
	std := ed25519.NewKeyFromSeed(seed)
	priv := portableKeyFromSeed(seed)
	if !bytes.Equal(priv, std) {
		t.Fatalf("seed %x: key %x, want %x", seed, priv, std)
	}
	var sig [signatureSize]byte
	if !portableSign(&sig, priv, msg) {
		t.Fatalf("seed %x: sign refused", seed)
	}
	stdSig := ed25519.Sign(std, msg)
	if !bytes.Equal(sig[:], stdSig) {
		t.Fatalf("seed %x msg %x: signature %x, want %x", seed, msg, sig, stdSig)
	}
	pub := std.Public().(ed25519.PublicKey)
	if !portableVerify(pub, msg, stdSig) {
		t.Fatalf("seed %x msg %x: stdlib signature refused", seed, msg)
	}
	for _, i := range []int{0, 31, 32, 63} {
		bad := bytes.Clone(stdSig)
		bad[i] ^= 0x01
		if portableVerify(pub, msg, bad) != ed25519.Verify(pub, msg, bad) {
			t.Fatalf("seed %x: verdicts differ on a signature corrupted at byte %d", seed, i)
		}
	}
	if len(msg) > 0 {
		other := bytes.Clone(msg)
		other[0] ^= 0x80
		if portableVerify(pub, other, stdSig) {
			t.Fatalf("seed %x: signature verifies another message", seed)
		}
	}
}

// TestPortableVerifyEdges: the malformed signatures and keys crypto/ed25519
// refuses are refused, and the verdicts agree.
func TestPortableVerifyEdges(t *testing.T) {
	v := rfc8032[1]
	pub, msg, sig := unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)
	// S + l: the same signature with a non-canonical S.
	l := unhex(t, "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	sPlusL := bytes.Clone(sig)
	var carry uint16
	for i := range 32 {
		x := uint16(sPlusL[32+i]) + uint16(l[i]) + carry
		sPlusL[32+i], carry = byte(x), x>>8
	}
	highBits := bytes.Clone(sig)
	highBits[63] |= 0xe0
	notAPoint := bytes.Clone(pub)
	notAPoint[0] ^= 0x02 // another key, or no point at all
	cases := []struct {
		name          string
		pub, msg, sig []byte
	}{
		{"good", pub, msg, sig},
		{"S not canonical", pub, msg, sPlusL},
		{"S high bits", pub, msg, highBits},
		{"short signature", pub, msg, sig[:63]},
		{"long signature", pub, msg, append(bytes.Clone(sig), 0)},
		{"empty signature", pub, msg, nil},
		{"short key", pub[:31], msg, sig},
		{"long key", append(bytes.Clone(pub), 0), msg, sig},
		{"other key", notAPoint, msg, sig},
		{"all-ones key", bytes.Repeat([]byte{0xff}, 32), msg, sig},
		{"zero signature", pub, msg, make([]byte, 64)},
	}
	for _, c := range cases {
		got, want := portableVerify(c.pub, c.msg, c.sig), stdVerify(c.pub, c.msg, c.sig)
		if got != want {
			t.Errorf("%s: verify %v, crypto/ed25519 %v", c.name, got, want)
		}
		if c.name != "good" && got {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// stdVerify is ed25519.Verify, which panics on a key of the wrong length
// where portableVerify reports false.
func stdVerify(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

func TestPortableSignRefusesBadKeys(t *testing.T) {
	priv := portableKeyFromSeed(unhex(t, rfc8032[0].seed))
	var sig [signatureSize]byte
	for name, k := range map[string][]byte{"short": priv[:63], "long": append(bytes.Clone(priv), 0), "empty": nil} {
		if portableSign(&sig, k, []byte("m")) {
			t.Errorf("%s: signed", name)
		}
	}
}

func TestPortableGenerateKeyShortRead(t *testing.T) {
	if _, _, err := portableGenerateKey(bytes.NewReader(make([]byte, 31))); err == nil {
		t.Fatal("a 31-byte source made a key")
	}
}

func FuzzPortableMatchesStdlib(f *testing.F) {
	for _, v := range rfc8032 {
		s, _ := hex.DecodeString(v.seed)
		m, _ := hex.DecodeString(v.msg)
		f.Add(s, m)
	}
	f.Fuzz(func(t *testing.T, seed, msg []byte) {
		if len(seed) < seedSize {
			seed = append(seed, make([]byte, seedSize-len(seed))...)
		}
		checkAgainstStdlib(t, seed[:seedSize], msg)
	})
}

// FuzzPortableVerify feeds arbitrary keys and signatures to both verifiers.
func FuzzPortableVerify(f *testing.F) {
	for _, v := range rfc8032 {
		p, _ := hex.DecodeString(v.pub)
		m, _ := hex.DecodeString(v.msg)
		s, _ := hex.DecodeString(v.sig)
		f.Add(p, m, s)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if portableVerify(pub, msg, sig) != stdVerify(pub, msg, sig) {
			t.Fatalf("pub %x msg %x sig %x: verdicts differ", pub, msg, sig)
		}
	})
}

func BenchmarkPortableSign(b *testing.B) {
	priv := portableKeyFromSeed(make([]byte, 32))
	msg := make([]byte, len(ReceiptDomain)+receiptBody)
	var sig [signatureSize]byte
	for b.Loop() {
		portableSign(&sig, priv, msg)
	}
}
