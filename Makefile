# Callisto — the two entry points a new machine needs: `make run` and `make test`.
# Each installs the Debian packages it is missing (scripts/install-deps.sh), then builds.

CARGO ?= cargo
# Interop suites run in a network namespace whose only interface is `lo`.
NETNS := unshare --net sh -c 'ip link set lo up && exec "$$0" "$$@"'

.PHONY: run test deps-build deps-test lint build-tests unit interop bench

run: deps-build
	$(CARGO) run --bin callisto -- $(ARGS)

test: deps-test lint build-tests
	$(NETNS) $(CARGO) test --workspace --offline --all-targets --no-fail-fast

deps-build:
	bash scripts/install-deps.sh build

deps-test:
	bash scripts/install-deps.sh test

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Everything is compiled outside the namespace (crates.io is reachable there); the tests then run
# offline inside it.
build-tests:
	$(CARGO) test --workspace --all-targets --no-run

bench: deps-build
	$(CARGO) bench --workspace
