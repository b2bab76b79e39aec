# Callisto — the two entry points a new machine needs: `make run` and `make test`.
# Each installs the Debian packages it is missing (scripts/install-deps.sh), then builds.

CARGO ?= cargo
# Interop suites run in a network namespace whose only interface is `lo`.
NETNS := unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"'

.PHONY: run test deps-build deps-test fmt clippy-driver build-tests bench

# `callisto` with no command starts `callisto-desktop` (the window, package `ui/`) from beside
# itself: both are built.
run: deps-build
	$(CARGO) build --workspace --bins
	$(CARGO) run --bin callisto -- $(ARGS)

# Clippy lints Callisto's own crates while they are compiled for the tests: clippy-driver is the
# workspace's rustc wrapper and denies warnings. The dependencies are compiled once, where
# `cargo clippy` would first check them all and the test build then compile them again.
# The test run keeps the same wrapper so that nothing is rebuilt inside the namespace.
test build-tests: export RUSTC_WORKSPACE_WRAPPER := $(shell rustc --print sysroot)/bin/clippy-driver
test build-tests: export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

test: deps-test fmt build-tests
	$(NETNS) $(CARGO) test --workspace --offline --all-targets --no-fail-fast

deps-build:
	bash scripts/install-deps.sh build

deps-test:
	bash scripts/install-deps.sh test

fmt:
	$(CARGO) fmt --all --check

clippy-driver:
	test -x "$$(rustc --print sysroot)/bin/clippy-driver" || rustup component add clippy

# Everything is compiled outside the namespace (crates.io is reachable there); the tests then run
# offline inside it.
build-tests: clippy-driver
	$(CARGO) test --workspace --all-targets --no-run

# `ui_render` starts the window through `callisto`: `callisto-desktop` (package `ui/`, which has no
# bench of its own) is built first.
bench: deps-build
	$(CARGO) build --release --workspace --bins
	$(CARGO) bench --workspace
