.PHONY: test lint bench render
# Everything CI runs.
test:
	./scripts/test
lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
# Render 10,000 builds; figures go in the README.
bench:
	cargo bench --bench render
# The README's first command.
render:
	cargo run --release -- render --install fixtures/builds/
