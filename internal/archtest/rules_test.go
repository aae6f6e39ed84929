package archtest

// modulePath is the module whose packages the rules name. A pattern
// whose first element has no dot is relative to it ("node/..." is
// github.com/verity-cdn/verity/node and everything under it); one whose
// first element has a dot is a full import path. Patterns follow the go
// command's: "..." matches any string, and "x/..." also matches x.
const modulePath = "github.com/verity-cdn/verity"

// importRule: no package matched by From (and not by Except) may import a
// package matched by Forbid, directly or through other packages.
type importRule struct {
	From   []string // "..." is every package of the module
	Except []string
	Forbid []string
	Why    string
}

// importRules is the one table of which part may import which; it is
// also in docs/architecture.md ("Import rules").
var importRules = []importRule{
	{
		From: []string{"wasmclient/..."},
		Forbid: []string{"node/...", "gateway/...", "coordinator/...", "control/...", "devnet/...",
			"s3api/...", "cmd/...", "e2e/...", "internal/nodeproto", "internal/events", "internal/ledger"},
		Why: "the worker runs in the visitor's browser: it links the shared building blocks, no server",
	},
	{
		From: []string{"node/..."},
		Forbid: []string{"coordinator/...", "gateway/...", "control/...", "devnet/...",
			"internal/events", "internal/ledger", "github.com/nats-io/nats-server/v2/..."},
		Why: "the node is what operators run: it speaks internal/nodeproto to a coordinator and embeds neither the network's servers nor NATS",
	},
	{
		From: []string{"internal/..."},
		Forbid: []string{"node/...", "gateway/...", "coordinator/...", "control/...", "devnet/...",
			"s3api/...", "wasmclient/...", "cmd/...", "e2e/...", "web/...", "serviceworker/..."},
		Why: "building blocks are shared by the parts and depend on none of them",
	},
	{
		From:   []string{"gateway/..."},
		Forbid: []string{"control/...", "devnet/...", "node/..."},
		Why:    "the site edge serves visitors: it takes the control plane as an http.Handler and talks to nodes over HTTP",
	},
	{
		From:   []string{"coordinator/..."},
		Forbid: []string{"gateway/...", "control/...", "devnet/...", "node/..."},
		Why:    "the coordinator is composed by others; it serves nodes over internal/nodeproto",
	},
	{
		From:   []string{"s3api/..."},
		Forbid: []string{"gateway/...", "control/...", "coordinator/...", "devnet/...", "node/..."},
		Why:    "the S3 API takes keys and the content store through small interfaces of its own, which the control plane implements",
	},
	{
		From:   []string{"control/..."},
		Forbid: []string{"devnet/...", "s3api/..."},
		Why:    "the control plane runs in `verity gateway` as well as in the devnet",
	},
	{
		From:   []string{"..."},
		Except: []string{"cmd/verity", "devnet/...", "e2e/..."},
		Forbid: []string{"devnet/..."},
		Why:    "the devnet composes the network for development and tests; only the binary and the tests run it",
	},
}

// listTarget is one `go list` of the module: the rules hold for every
// module package in each listing.
type listTarget struct {
	GOOS, GOARCH string
	Patterns     []string
}

var listTargets = []listTarget{
	{GOOS: "linux", GOARCH: "amd64", Patterns: []string{"./..."}},
	// The worker and what it links are compiled with other files in wasm
	// (_js.go files, !wasm build tags).
	{GOOS: "js", GOARCH: "wasm", Patterns: []string{"./wasmclient/..."}},
}

// workerPackage is built for js/wasm and its function names checked.
const workerPackage = "./wasmclient/cmd/worker"

// workerForbidden are packages none of whose functions may be linked into
// the worker's wasm. Patterns as in the import rules, but every one is a
// full import path.
var workerForbidden = []string{
	"fmt",
	"reflect",
	"os", // its initializer alone (with internal/poll's) was 23 KB gzipped
	"internal/poll",
	"encoding/hex",    // imports fmt, which imports os
	"encoding/base32", // internal/base32 is the few lines the worker needs (3–4 KB less)
	"crypto/sha256",
	"crypto/sha512",
	"crypto/ed25519",
	"crypto/internal/fips140...",
	"net/http/...",
	"net/url",
	"encoding/json",
	"github.com/ipfs/boxo/...",
	"github.com/ipfs/go-cid",
	"github.com/multiformats/...",
}

// workerAllowed are functions linked although their package is forbidden;
// neither brings any of reflect's code.
//
//   - reflect.init: encoding/binary imports reflect (for binary.Read and
//     Write, which the worker never calls), so reflect's package
//     initializer is linked. encoding/binary comes with
//     filippo.io/edwards25519, the worker's Ed25519 (internal/payment:
//     receipts and vouchers), so it stays.
//   - reflect.typedmemmove: the runtime's own function, given reflect's
//     name by a linkname in runtime/mbarrier.go; the runtime calls it for
//     internal/reflectlite (errors.As), so a build links it whenever the
//     compiler does not inline that call.
var workerAllowed = []string{
	"reflect.init",
	"reflect.typedmemmove",
}
