package archtest

import (
	"errors"
	"slices"
	"testing"
)

// Names as the linker writes them (see wasmSymbol).
var syntheticNames = []string{
	"go_buildid",
	"runtime.main",
	"runtime.reflectcall",
	"internal_reflectlite.rtype.Kind",
	"internal_fmtsort.compare",
	"github.com_verity_cdn_verity_internal_errfmt.errorf",
	"github.com_verity_cdn_verity_internal_sha256.block",
	"crypto_subtle.ConstantTimeCompare",
	"encoding_binary.bigEndian.Uint32",
	"reflect.init",
	"reflect.typedmemmove",
	"type_.eq.internal_abi.ITab",
	"_2_interface___",
}

// Each forbidden package, linked, fails the check with its functions
// named; allowed functions and look-alike packages do not.
func TestLinkViolations(t *testing.T) {
	if bad := linkViolations(syntheticNames, workerForbidden, workerAllowed); len(bad) != 0 {
		t.Fatalf("clean names: %v", bad)
	}
	cases := []struct {
		pat string
		fn  string // a function of a package pat matches
	}{
		{"fmt", "fmt.Sprintf"},
		{"fmt", "fmt.__pp_.doPrintf"},
		{"fmt", "type_.eq.fmt.fmt"},
		{"fmt", "type_.eq._2_fmt.wrapError"},
		{"reflect", "reflect.Value.Kind"},
		{"reflect", "reflect.init.0"},
		{"os", "os.init"},
		{"os", "type_.eq.os.file"},
		{"internal/poll", "internal_poll.__FD_.Read"},
		{"encoding/hex", "encoding_hex.EncodeToString"},
		{"encoding/base32", "encoding_base32.__Encoding_.Encode"},
		{"crypto/sha256", "crypto_sha256.__Digest_.Write"},
		{"crypto/sha512", "crypto_sha512.New"},
		{"crypto/ed25519", "crypto_ed25519.Verify"},
		{"crypto/internal/fips140...", "crypto_internal_fips140_sha256.blockGeneric"},
		{"crypto/internal/fips140...", "crypto_internal_fips140.Name"},
		{"crypto/internal/fips140...", "crypto_internal_fips140deps_byteorder.BEUint32"},
		{"net/http/...", "net_http.__Client_.Do"},
		{"net/http/...", "net_http_httptrace.ContextClientTrace"},
		{"net/url", "net_url.Parse"},
		{"encoding/json", "encoding_json.Marshal"},
		{"encoding/json", "type_.hash.encoding_json.SyntaxError"},
		{"github.com/ipfs/boxo/...", "github.com_ipfs_boxo_gateway.NewHandler"},
		{"github.com/ipfs/go-cid", "github.com_ipfs_go_cid.Parse"},
		{"github.com/multiformats/...", "github.com_multiformats_go_multihash.Sum"},
	}
	for _, tc := range cases {
		names := append(slices.Clone(syntheticNames), tc.fn)
		bad := linkViolations(names, workerForbidden, workerAllowed)
		if len(bad) != 1 || !slices.Equal(bad[tc.pat], []string{tc.fn}) {
			t.Errorf("%s linked: violations %v, want %s: [%s]", tc.fn, bad, tc.pat, tc.fn)
		}
	}
	// Every forbidden pattern is exercised above.
	for _, pat := range workerForbidden {
		if !slices.ContainsFunc(cases, func(c struct{ pat, fn string }) bool { return c.pat == pat }) {
			t.Errorf("no case for %s", pat)
		}
	}
	for _, fn := range []string{
		"internal_fmtsort.compare",         // not fmt
		"github.com_ipfs_go_cidx.Parse",    // not go-cid
		"crypto_sha256x.New",               // not crypto/sha256
		"net_urlx.Parse",                   // not net/url
		"runtime.reflect_typedmemmove",     // the runtime's, not reflect's
		"github.com_ipfs_boxox.New",        // not boxo/...
		"crypto_internal_entropy.Depleted", // not fips140
	} {
		if bad := linkViolations([]string{fn}, workerForbidden, workerAllowed); len(bad) != 0 {
			t.Errorf("%s: %v", fn, bad)
		}
	}
}

// wasmModule encodes a module of the given sections (id, contents).
func wasmModule(sections ...[]byte) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range sections {
		b = append(b, s...)
	}
	return b
}

func leb(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, leb(uint32(len(body)))...), body...)
}

func wasmName(s string) []byte { return append(leb(uint32(len(s))), s...) }

// nameSection is a "name" custom section with a module name (subsection
// 0) and the function names (subsection 1) numbered from first.
func nameSection(first uint32, names ...string) []byte {
	var fn []byte
	fn = append(fn, leb(uint32(len(names)))...)
	for i, n := range names {
		fn = append(fn, leb(first+uint32(i))...)
		fn = append(fn, wasmName(n)...)
	}
	body := wasmName("name")
	body = append(body, section(0, wasmName("worker"))...)
	body = append(body, section(1, fn)...)
	return section(0, body)
}

var wasmCases = []struct {
	name  string
	bin   []byte
	names []string
	err   bool
}{
	{"empty module", wasmModule(), nil, false},
	{"no name section", wasmModule(section(1, []byte{0x60, 0, 0}), section(0, append(wasmName("producers"), 1, 2, 3))), nil, false},
	{"names", wasmModule(section(1, []byte{1, 0x60, 0, 0}), nameSection(2, "runtime.main", "fmt.Sprintf")), []string{"runtime.main", "fmt.Sprintf"}, false},
	{"long index", wasmModule(nameSection(300000, "a", "b", "c")), []string{"a", "b", "c"}, false},
	{"long section", wasmModule(section(0, append(wasmName("pad"), make([]byte, 200)...)), nameSection(0, "x")), []string{"x"}, false},
	{"not wasm", []byte("\x7fELF\x02\x01\x01\x00"), nil, true},
	{"short", []byte("\x00as"), nil, true},
	{"section past end", wasmModule([]byte{1, 10, 0}), nil, true},
	{"unterminated LEB128", wasmModule([]byte{1, 0x80, 0x80}), nil, true},
	{"LEB128 over 32 bits", wasmModule([]byte{1, 0xff, 0xff, 0xff, 0xff, 0x7f}), nil, true},
	{"name past its section", wasmModule(section(0, []byte{9, 'n', 'a', 'm', 'e'})), nil, true},
	{"function name past end", wasmModule(section(0, append(wasmName("name"), section(1, []byte{1, 0, 5, 'a'})...))), nil, true},
}

func TestWasmFuncNames(t *testing.T) {
	for _, tc := range wasmCases {
		t.Run(tc.name, func(t *testing.T) {
			names, err := wasmFuncNames(tc.bin)
			if (err != nil) != tc.err || err != nil && !errors.Is(err, errWasm) {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !slices.Equal(names, tc.names) {
				t.Errorf("names = %q, want %q", names, tc.names)
			}
		})
	}
}

func FuzzWasmFuncNames(f *testing.F) {
	for _, tc := range wasmCases {
		f.Add(tc.bin)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		names, err := wasmFuncNames(b)
		if err != nil && names != nil {
			t.Fatalf("names %q with error %v", names, err)
		}
		if err != nil && !errors.Is(err, errWasm) {
			t.Fatalf("error %v does not match errWasm", err)
		}
		total := 0
		for _, n := range names {
			total += len(n)
		}
		if total > len(b) {
			t.Fatalf("%d bytes of names from %d bytes", total, len(b))
		}
	})
}
