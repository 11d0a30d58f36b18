# edi-bridge — `make demo` and `make test` work on a fresh Debian machine with Rust:
# they first install the Debian packages the build and the tests need (with apt-get).

SHELL := /bin/bash
# libxml2-dev + pkg-config + libclang-dev: the libxml crate (bindgen) · libsqlite3-dev: the ledger
# openssh-server + openssh-client: the tests start a real sshd and use ssh-keygen / sftp
# tzdata: partner time zones (archive folders by date) come from /usr/share/zoneinfo
# time: tests/hostile.rs measures peak memory with GNU time (else from /proc)
# systemd: tests/deploy.rs verifies the units in deploy/ with systemd-analyze
DEB_PACKAGES := pkg-config libxml2-dev libclang-dev libsqlite3-dev openssh-server openssh-client tzdata time systemd
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
CARGO ?= cargo

.PHONY: all deps build release demo test lint bench fuzz verify-units

all: build

deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make: installing missing Debian packages:$$missing (apt-get)"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "make: Debian packages present:$(DEB_PACKAGES)"; \
	fi

build: deps
	$(CARGO) build

release: deps
	$(CARGO) build --release

demo: build
	./demo/run-demo.sh target/debug/edi-bridge

test: deps
	$(CARGO) test --no-fail-fast

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

# `systemd-analyze verify` on deploy/'s units, failing on any warning — and failing loudly when
# systemd-analyze is missing (tests/deploy.rs runs it only where it is installed).
verify-units: build
	./deploy/verify-units.sh

bench: deps
	$(CARGO) bench --bench validate_map
	$(CARGO) bench --bench pass_memory

# Fuzzing needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); `make test`
# does not. FUZZ_SECONDS per target (default 180).
FUZZ_SECONDS ?= 180
FUZZ_TARGETS := config mapping_path xml_records csv_rows
fuzz: deps
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  cargo +nightly fuzz run $$t -- -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done
