# Portico — build, test, benchmark.
#   make build   static binary in bin/portico
#   make test    install what the tests need (Debian packages, Go modules incl. Pebble), then vet and run every test with the race detector
#   make bench   go benchmarks + the proxy comparison against NGINX, HAProxy and Caddy
#   make bench-cache  cache hits: Portico's cache plugin against NGINX proxy_cache
#   make bench-memory RSS after bursts: back near idle within 15 s
#   make conformance-cache  the http-cache-tests suite (cache-tests.fyi) against the cache plugin
#   make lint    gofmt and go vet

GO       ?= go
BIN      := bin/portico
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/portico-gateway/portico/internal/cli.Version=$(VERSION)
BENCH_REPEATS ?= 3

.PHONY: all build test test-deps lint bench bench-go bench-proxy bench-cache bench-memory conformance-cache fuzz clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/portico

test-deps:
	@scripts/test-deps.sh

test: test-deps lint
	$(GO) test -race -count=1 -timeout 12m ./...

# make conformance: the public conformance suites against bin/portico, each
# installing what it needs (h2spec built into .cache/, testssl.sh with
# apt-get); one summary line per suite. Not part of make test. Runs
# scripts/conformance-cache.sh (http-cache-tests) too when it exists.
#   make conformance-h2    h2spec only;  make conformance-tls   testssl.sh only
.PHONY: conformance conformance-h2 conformance-tls

conformance: build
	@scripts/conformance.sh

conformance-h2: build
	@scripts/conformance-h2spec.sh

conformance-tls: build
	@scripts/conformance-tls.sh

lint:
	@out=$$(gofmt -l cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

bench: bench-go bench-proxy

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./internal/router ./internal/proxy ./internal/gateway ./internal/plugins/... ./internal/telemetry ./internal/limiter ./internal/consumer ./internal/upstream | tee bench-go.txt

bench-proxy: build
	BENCH_REPEATS=$(BENCH_REPEATS) scripts/bench.sh

bench-memory: build
	$(GO) run ./bench/memory -portico $(BIN)

bench-cache: build
	BENCH_REPEATS=$(BENCH_REPEATS) scripts/bench-cache.sh

# Installs the suite with npm on first use (outside the tree, see the
# script); `make test` never downloads anything.
conformance-cache: build
	scripts/conformance-cache.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzNormalizePath -fuzztime 30s ./internal/router
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./internal/config
	$(GO) test -run '^$$' -fuzz FuzzReadRequest -fuzztime 30s ./internal/listener/h1

clean:
	rm -rf bin bench-go.txt
