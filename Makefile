# The README's two commands: `make run` (the main job) and `make test` (the whole test suite).
# Both install what is missing first (libtorch from PyPI, the data sets) and reuse it afterwards.
.PHONY: run test setup lint bench clean-runs

CARGO ?= cargo
QUICKSTART_OUT ?= runs/quickstart

setup:
	./scripts/setup-libtorch
	./scripts/fetch-data

# `etf run` ends with the comparison table, then the paths of the comparison figures it wrote
# beside comparison.md (PNG, each also as SVG).
run: setup
	$(CARGO) build --release --bin etf
	./target/release/etf run experiments/quickstart.toml --out $(QUICKSTART_OUT) --force

test: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	# collapse-metrics alone: its default, libtorch-free build.
	$(CARGO) clippy -p collapse-metrics --all-targets --locked -- -D warnings
	$(CARGO) test --workspace --locked
	$(CARGO) package -p collapse-metrics --locked --allow-dirty
	./scripts/test-python

bench: setup
	$(CARGO) bench -p etf-benches
