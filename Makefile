# stokehold: `make demo` and `make test` each set everything up on a fresh
# machine (virtual environment, Python packages, the native build) and run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# cmake (>= 3.26, for the bundled HDF5) and zig (the manylinux linker)
# come from PyPI into the virtual environment; the native builds find them here.
export PATH := $(abspath $(VENV))/bin:$(PATH)
PIP := $(PY) -m pip --disable-pip-version-check
DATA ?= data
SHAPES := $(DATA)/shapes
RUST_SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock pyproject.toml

.PHONY: help setup install wheel wheel-check sdist-check demo test lint rust-test py-test bench fuzz clean

help:
	@echo "make demo   set up, generate the bundled dataset and run the main job"
	@echo "make test   set up and run every check and test"
	@echo "make bench  run the benchmarks (see benchmarks/README.md)"
	@echo "make wheel  build the manylinux wheel and the sdist into dist/"

# Debian packages the build needs, installed only when missing: nasm for
# libjpeg-turbo's SIMD code (HDF5 and libjpeg-turbo are built from source and
# linked statically; nothing else is linked).
SYSTEM_PACKAGES := nasm
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: system-deps
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Python packages, installed only when a requirements file changes: the
# build tools and what the demo runs (requirements-demo.txt), then the test
# tools and the frameworks the tests drive (requirements-dev.txt: torch and
# tensorflow-cpu are large, and `make demo` does without them).
$(VENV)/.deps-demo: requirements-demo.txt | system-deps
	@command -v cargo >/dev/null || { echo "error: cargo (Rust) is required: https://rustup.rs"; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-demo.txt
	touch $@

$(VENV)/.deps: requirements-dev.txt $(VENV)/.deps-demo
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

setup: system-deps $(VENV)/.deps

# The wheel: manylinux_2_28, abi3, self-contained, linked by zig against
# glibc 2.28 (this machine has a newer glibc, which would pin the wheel to
# it); installed into the venv like any user's `pip install`.
$(VENV)/.installed: $(VENV)/.deps-demo $(RUST_SOURCES) $(shell find python/stokehold -type f)
	rm -rf dist
	$(VENV)/bin/maturin build --release --locked --zig --compatibility manylinux_2_28 --out dist
	$(PIP) install --quiet --force-reinstall --no-deps dist/stokehold-*.whl
	touch $@

install: $(VENV)/.installed

wheel: install
	$(VENV)/bin/maturin sdist --out dist
	@ls -l dist

# The wheel's tag and links, and the README run from it in a new venv.
wheel-check: setup install
	PY=$(PY) .ci/check_wheel.sh

# The sdist builds with pip on a machine with Rust and no HDF5 (slow: a
# full release build; not part of `make test`).
sdist-check: wheel
	rm -rf build/sdist-venv && python3 -m venv build/sdist-venv
	build/sdist-venv/bin/pip install --quiet --disable-pip-version-check dist/stokehold-*.tar.gz
	build/sdist-venv/bin/python -c "import stokehold; print('sdist build OK', stokehold.__version__)"

demo: install
	$(PY) -m stokehold.datasets $(SHAPES) --n 6000 --seed 0
	$(VENV)/bin/stokehold index $(SHAPES)/instances.json -o $(SHAPES)/manifest.jsonl --report $(SHAPES)/index-report.json
	$(VENV)/bin/stokehold index $(SHAPES)/images -o $(SHAPES)/manifest-folder.jsonl
	$(VENV)/bin/stokehold index $(SHAPES)/labels.csv -o $(SHAPES)/manifest-csv.jsonl
	$(VENV)/bin/stokehold index $(SHAPES)/voc -o $(SHAPES)/manifest-voc.jsonl
	$(VENV)/bin/stokehold split $(SHAPES)/manifest.jsonl --val 0.1 --seed 0
	$(PY) examples/index_tour.py $(SHAPES)
	$(VENV)/bin/stokehold pack $(SHAPES)/manifest.train.jsonl -o $(DATA)/shapes-train.h5 --size 96x96 --force
	$(VENV)/bin/stokehold inspect $(DATA)/shapes-train.h5
	KERAS_BACKEND=jax $(PY) examples/keras_classifier.py --data $(DATA)

lint: setup system-deps
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

rust-test: setup
	cargo nextest run --workspace --locked --no-fail-fast
	cargo test --workspace --doc --locked

py-test: setup install
	$(PY) -m mypy.stubtest stokehold._native
	$(PY) -m mypy
	$(PY) -m pytest

test: lint rust-test py-test wheel-check

# The benchmarks (about 45 minutes on 2 cores; see benchmarks/README.md).
# matplotlib draws the chart; tensorflow-cpu, torch and h5py, the peers
# compared against, come with the test tools (requirements-dev.txt).
bench: setup install
	$(PIP) install --quiet matplotlib
	$(PY) benchmarks/bench_all.py
	cargo run --release --locked -p stokehold-index --example index_bench
	cargo build --release --locked -p stokehold-image --example decode_resize_bench
	$(PY) benchmarks/pack_bench.py
	cargo build --release --locked -p stokehold-loader --example loader_bench
	$(PY) benchmarks/loader_bench.py
	$(PY) benchmarks/keras_bench.py
	$(PY) benchmarks/buckets_bench.py
	$(PY) benchmarks/scale_bench.py
	$(PY) benchmarks/object_storage_bench.py --server moto
	cargo build --release --locked --manifest-path benchmarks/s3-server/Cargo.toml
	$(PY) benchmarks/object_storage_bench.py --server s3s
	$(PY) benchmarks/soak.py --epochs 200

clean:
	rm -rf target benchmarks/s3-server/target dist build $(VENV) $(DATA) bench-out preview.png

# Fuzzing, not part of `make test`: every target in fuzz/fuzz_targets for
# FUZZ_SECONDS (60 by default: 9 minutes in all on 2 cores, plus a first
# build of several minutes that compiles HDF5 and libjpeg-turbo),
# each from a scratch corpus in fuzz/corpus/<target> seeded from the
# committed fuzz/seeds/<target>. A crash, timeout or out-of-memory input is
# saved in fuzz/artifacts/<target>/; the other targets still run, and the
# rule fails at the end naming the targets that found something.
# cargo-fuzz builds with -Zsanitizer=address, a nightly flag: RUSTC_BOOTSTRAP=1
# lets the stable toolchain accept it. TMPDIR keeps the targets' scratch
# folders, which libFuzzer's exit never removes, under fuzz/target/.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(sort $(basename $(notdir $(wildcard fuzz/fuzz_targets/*.rs))))
CARGO_FUZZ_VERSION := 0.13.2
FUZZ := RUSTC_BOOTSTRAP=1 TMPDIR="$(CURDIR)/fuzz/target/tmp" cargo fuzz

.PHONY: fuzz
fuzz:
	@cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION)
	mkdir -p fuzz/target/tmp
	$(FUZZ) build --fuzz-dir fuzz
	@failed=; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/corpus/$$t && cp fuzz/seeds/$$t/* fuzz/corpus/$$t/; \
		echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ) run --fuzz-dir fuzz $$t fuzz/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
			|| failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: findings in$$failed, inputs in fuzz/artifacts/"; exit 1; fi
