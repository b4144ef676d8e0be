# stokehold: `make demo` and `make test` each set everything up on a fresh
# machine (virtual environment, Python packages, the native build) and run.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
DATA ?= data
SHAPES := $(DATA)/shapes
RUST_SOURCES := $(shell find crates -name '*.rs' -o -name Cargo.toml) Cargo.toml Cargo.lock pyproject.toml

.PHONY: help setup install demo test lint rust-test py-test bench clean

help:
	@echo "make demo   set up, generate the bundled dataset and run the main job"
	@echo "make test   set up and run every check and test"
	@echo "make bench  run the benchmarks (see benchmarks/README.md)"

# Debian packages the build links against, installed only when missing.
SYSTEM_PACKAGES := libhdf5-dev pkg-config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: system-deps
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages: $$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Python tooling, installed only when requirements-dev.txt changes.
$(VENV)/.deps: requirements-dev.txt | system-deps
	@command -v cargo >/dev/null || { echo "error: cargo (Rust) is required: https://rustup.rs"; exit 1; }
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $@

setup: system-deps $(VENV)/.deps

# The wheel, built by maturin and installed into the venv like any user's `pip install .`.
$(VENV)/.installed: $(VENV)/.deps $(RUST_SOURCES) $(shell find python/stokehold -type f)
	rm -rf dist
	$(VENV)/bin/maturin build --release --locked --out dist
	$(PIP) install --quiet --force-reinstall --no-deps dist/stokehold-*.whl
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m stokehold.datasets $(SHAPES) --n 2000 --seed 0
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

rust-test: system-deps
	cargo nextest run --workspace --locked --no-fail-fast
	cargo test --workspace --doc --locked

py-test: install
	$(PY) -m mypy.stubtest stokehold._native
	$(PY) -m mypy
	$(PY) -m pytest

test: lint rust-test py-test

bench: install
	cargo run --release --locked -p stokehold-index --example index_bench
	cargo build --release --locked -p stokehold-image --example decode_resize_bench
	$(PY) benchmarks/pack_bench.py
	cargo build --release --locked -p stokehold-loader --example loader_bench
	$(PY) benchmarks/loader_bench.py
	$(PY) benchmarks/keras_bench.py

clean:
	rm -rf target dist $(VENV) $(DATA) bench-out preview.png
