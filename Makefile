# wasmpool — build, test and demo targets. A fresh machine needs only Go.
GO      ?= go
BIN     := build/wasmpool
MODDIR  := build/modules
PKGS    := ./...
# A test binary carries no versions of its dependencies, so wazero would
# name its compiled-code cache "dev" in tests and the real version in the
# plain build (buildmods -warm-test-cache) that fills the tests' cache:
# every entry warmed up in advance would miss. Tests are given the version
# go.mod requires (see testmod.CompileCache).
WAZERO_VERSION := $(shell $(GO) list -m -f '{{.Version}}' github.com/tetratelabs/wazero)
TESTFLAGS := -ldflags=-X=github.com/tetratelabs/wazero/internal/version.version=$(WAZERO_VERSION)

.PHONY: all build modules demo test vet fmt-check race wat cmodules rustmodules asmodules fixtures bench bench-check gobench fuzz soak clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/wasmpool

# Builds every shipped Go guest module into $(MODDIR) (cached by content).
modules:
	$(GO) run ./internal/testmod/cmd/buildmods -o $(MODDIR)

# The main job: build the CLI and the modules, then run a few tasks through it.
demo: build modules
	@bash scripts/demo.sh $(BIN) $(MODDIR)

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './build/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# -race: vet compiles every dependency for its type information, and with
# the race detector's build those are the packages the tests link, so the
# race build after it finds them compiled (on a fresh machine vet and the
# race build cost 263 s of CPU apart, 176 s so).
vet:
	$(GO) vet -race $(PKGS)
	$(GO) vet -race -tags soak ./pool/ ./cluster/
	$(GO) vet -race -tags benchcheck ./internal/benchcmp/ ./cluster/

# The test command: formatting, vet, the modules (each also compiled, by a
# plain build, into the cache the tests share), then the whole suite with
# -race, and beside it, without -race, what the race detector cannot help:
# internal/wasmbin (pure functions over bytes: no goroutines, no shared
# state but LineTable's mutex, which the engine's race-enabled trap tests
# exercise) and the engine's differential tests (engine/differential_test.go,
# built only without -race), which run every fixture's tasks one at a time
# through several engines. Under the race detector wazero's compiler and
# interpreter run 15-20x slower with nothing to find there; run beside the
# race step, they fill the core its last package leaves idle.
RACE_PKGS = $(shell $(GO) list $(PKGS) | grep -v '/internal/wasmbin$$')
NORACE_LOG = build/test-norace.log
test: fmt-check vet
	$(GO) run ./internal/testmod/cmd/buildmods -o $(MODDIR) -warm-test-cache
	@mkdir -p build; \
	( $(GO) test $(TESTFLAGS) -count=1 -timeout 10m ./internal/wasmbin/ && \
	  $(GO) test $(TESTFLAGS) -count=1 -timeout 10m -run '^(TestInstrumentationChangesNothing|TestFuelIsTheSameEverywhere)$$' ./engine/ ) \
	  > $(NORACE_LOG) 2>&1 & norace=$$!; \
	echo "$(GO) test -race -count=1 -timeout 20m ..."; \
	$(GO) test $(TESTFLAGS) -race -count=1 -timeout 20m $(RACE_PKGS); race=$$?; \
	wait $$norace; nr=$$?; \
	echo "without -race (internal/wasmbin, the engine's differential tests):"; cat $(NORACE_LOG); \
	test $$race -eq 0 && test $$nr -eq 0

# Regenerate the committed modules under testdata/. Each needs its own
# toolchain; none is needed by make test, which uses the committed .wasm.
wat:          # wabt (wat2wasm)
	bash modules/wat/build.sh

cmodules:     # clang, lld, wasi-libc, libclang-rt-*-dev-wasm32
	bash modules/c/build.sh

rustmodules:  # rustc with the wasm32-wasi std (Debian: rustc libstd-rust-dev-wasm32)
	bash modules/rust/build.sh

asmodules:    # node + npm (installs assemblyscript and its WASI shim locally)
	bash modules/assemblyscript/build.sh

fixtures: wat cmodules rustmodules asmodules

# The benchmark harness (internal/benchcmp): wasmpool's two modes against a
# plain Go pool, bare wazero and Python's executors, same run, same
# workloads; one table on stdout, also saved as build/bench.json. A few
# minutes on 2 cores; BENCHFLAGS=-quick for about one, BENCHTIME=300ms to
# set the time per measure. Not part of make test.
bench: build
	$(GO) run ./internal/benchcmp/cmd/benchcmp -wasmpool $(BIN) -json build/bench.json \
		$(if $(BENCHTIME),-benchtime $(BENCHTIME)) $(BENCHFLAGS)

# The benchmark harness's own check: one whole run with trivial iteration
# counts, asserting that every part of it works (a minute or two; not part
# of make test).
bench-check:
	$(GO) test $(TESTFLAGS) -tags benchcheck -count=1 -run . ./internal/benchcmp/

# The go test benchmarks of each hot path, for benchstat:
#   make gobench GOBENCHFLAGS='-count 10' > new.txt; benchstat old.txt new.txt
gobench:
	$(GO) test $(TESTFLAGS) -run '^$$' -bench . -benchmem $(GOBENCHFLAGS) ./engine/ ./pool/ ./future/ ./cluster/ ./capability/httpcap/

# Runs each fuzz target for FUZZTIME (go test fuzzes one target at a time).
# Their seed corpora, and any regression inputs in testdata/fuzz, already run
# in make test. A failure leaves the input in PKG/testdata/fuzz/TARGET/.
FUZZTIME ?= 60s
FUZZ_TARGETS := ./engine:FuzzCompile ./engine:FuzzABI ./internal/wasmbin:FuzzCheck ./internal/wasmbin:FuzzInstrument ./internal/wasmbin:FuzzScanCode \
	./internal/workerproc:FuzzChildFrames ./internal/workerproc:FuzzPoolFrames ./internal/wire:FuzzReader ./internal/wire:FuzzDecoder \
	./internal/wire:FuzzEngineDecoders \
	./cmd/wasmpool:FuzzParseTaskLine
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

# The soak tests (not part of make test): SOAK_TASKS tasks through each
# mode of a pool, good and hostile modules mixed (prints tasks/s, RSS at 1k,
# 100k and all tasks, goroutines left, and fails if any input lacks its one
# right result); SOAK_MODULES distinct modules through one long-lived
# pool of each mode and through one cluster worker process, whose RSS must
# stay bounded; and the cluster's failover drill (2000 checked tasks,
# workers killed, the broker restarted: 0 lost, 0 wrong, the stalls printed).
SOAK_TASKS ?= 1000000
SOAK_MODULES ?= 10000
soak: modules
	WASMPOOL_SOAK_TASKS=$(SOAK_TASKS) $(GO) test $(TESTFLAGS) -tags soak -run '^TestSoak$$' -count=1 -timeout 0 -v ./pool/
	WASMPOOL_SOAK_MODULES=$(SOAK_MODULES) $(GO) test $(TESTFLAGS) -tags soak -run '^TestSoakManyModules$$' -count=1 -timeout 0 -v ./pool/
	WASMPOOL_SOAK_MODULES=$(SOAK_MODULES) $(GO) test $(TESTFLAGS) -tags soak -run '^TestSoak' -count=1 -timeout 0 -v ./cluster/

clean:
	rm -rf build
