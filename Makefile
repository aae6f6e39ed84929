# Verity build. `make run` starts the local devnet; `make test` runs every test.
GO       ?= go
GOROOT   := $(shell $(GO) env GOROOT)
DIST     := serviceworker/dist
WASM     := $(DIST)/verity.wasm
WASMEXEC := $(DIST)/wasm_exec.js
BIN      := bin/verity
GOFILES  := $(shell find . -name '*.go' -not -path './e2e/*' 2>/dev/null) go.mod go.sum
SWFILES  := $(wildcard serviceworker/*.js) $(shell find web -type f 2>/dev/null)
TESTTIMEOUT ?= 30m
# Packages compiled into the worker's wasm (vetted and tested for js/wasm too).
WASMPKGS := ./wasmclient/... ./internal/blake3/... ./internal/sha256/... ./internal/cid/... \
	./internal/car/... ./internal/wire/... ./internal/verify/... ./internal/unixfs/... \
	./internal/noderecord/... ./internal/payment/... ./internal/webfile/... ./internal/scoredoc/...

.PHONY: all build wasm run test test-go test-wasm test-deps bench vet clean

all: build

build: wasm $(BIN)

# The worker's Go code, compiled for the browser. Built first: bin/verity embeds it.
wasm: $(WASM) $(WASMEXEC)

$(WASM): $(GOFILES)
	@mkdir -p $(DIST)
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='-s -w' -o $@ ./wasmclient/cmd/worker
	@ls -l $@ | awk '{printf "wasm: %s bytes raw, ", $$5}'; gzip -9c $@ | wc -c | awk '{print $$1 " bytes gzip"}'

$(WASMEXEC): $(GOROOT)/lib/wasm/wasm_exec.js
	@mkdir -p $(DIST)
	cp $< $@

$(BIN): $(WASM) $(WASMEXEC) $(GOFILES) $(SWFILES)
	@mkdir -p bin
	$(GO) build -trimpath -o $@ ./cmd/verity

run: build
	./$(BIN) devnet

# Browser tests need Debian's chromium; install it when missing.
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium (browser tests need it)"; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

vet: wasm
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
		[ -z "$$unformatted" ] || { echo "gofmt needed:"; echo "$$unformatted"; exit 1; }
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet $(WASMPKGS)

# Packages the worker uses are also tested compiled to wasm, under node.
test-wasm: wasm
	GOOS=js GOARCH=wasm $(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" $(WASMPKGS)

test-go: build test-deps
	$(GO) test -count=1 -timeout $(TESTTIMEOUT) ./...

test: vet test-go test-wasm

# One table from the harness (browser, wasm, sizes), then the Go benchmarks
# of the network's other hot paths, all in one run.
GOBENCH := BenchmarkVerify|BenchmarkRoute|BenchmarkDeployToPublished|BenchmarkReceiptVerify|BenchmarkReceiptSign|BenchmarkSettle
bench: build test-deps
	$(GO) run ./e2e/cmd/bench
	$(GO) test -run '^$$' -bench '$(GOBENCH)' -benchtime 2s ./internal/verify ./coordinator ./internal/devnet ./internal/payment ./internal/ledger

clean:
	rm -rf bin $(WASM) $(WASMEXEC)
