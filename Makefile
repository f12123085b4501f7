# The README's two commands are `make demo` and `make test`; both set up .venv first.
# Without make: `bash scripts/dev.sh demo` and `bash scripts/dev.sh test`.
.PHONY: setup demo test lint crds e2e bench
setup: ; @bash scripts/dev.sh setup
demo: ; @bash scripts/dev.sh demo
test: ; @bash scripts/dev.sh test
lint: ; @bash scripts/dev.sh lint
crds: ; @bash scripts/dev.sh crds
e2e: ; @bash e2e/run.sh
bench:
	.venv/bin/python benchmarks/bench_renderer.py --quick
	.venv/bin/python benchmarks/bench_local.py
	.venv/bin/python benchmarks/bench_operator.py
	.venv/bin/python benchmarks/bench_simulate.py
