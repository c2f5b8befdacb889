# make run       run the workflow on the bundled example source (no network) into results/
# make example   extract one bundled file with the single-file command
# make test      run the test suite (unit, end-to-end against a local HTTP server), in
#                TEST_WORKERS processes (pytest-xdist; default auto: one per core; 0: none)
# make check     lint, type-check, and the house rules (tests/test_house.py)
# make bench     benchmark the engines on generated files (BENCH_MB=1000 MB of JSON; bench/):
#                the skip path, extract-all against cms-mrf-extractor (installed once into
#                bench/data/peer-venv, its own venv), start-up, issue #18's goals table;
#                then the workflow at scale (SCALE_ARGS: 400 tasks, a 20,000-file index)
# make bench-smoke  the same at BENCH_MB=20 and 20 tasks, a 500-file index, in seconds (CI)
# make test-cluster  install the SLURM executor plugin ('.[cluster]'), start a one-node SLURM
#                    cluster here (root; installs Debian's packages),
#                    run the cluster tests on it, stop it (.ci/slurm-test)
# make test-sanitizers  build the C extensions with AddressSanitizer and UBSan into
#                    build/sanitizers/ and run their tests on that build (.ci/sanitizers)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
BENCH_MB ?= 1000
# bench/workflow_scale.py's sizes (issue #18's); bench-smoke passes small ones
SCALE_ARGS ?= --tasks 400 --index-files 20000
TEST_WORKERS ?= auto

.PHONY: run example test test-cluster test-sanitizers check bench bench-smoke clean

# pip install -e also compiles the C extensions into src/mrfbatch/ (setup.py), where the
# workflow's scripts find them too; an edit of the C source reinstalls, and a failed compile
# stops it.
# Extension X is built from src/mrfbatch/X*.c and X*.h.
EXTENSIONS := _jsonscan _rows

$(VENV)/.installed: pyproject.toml setup.py $(wildcard $(EXTENSIONS:%=src/mrfbatch/%*.[ch]))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[workflow,test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores 2 --config source=csv input=examples/plans.csv \
		cpt_whitelist=examples/codes.txt

example: $(VENV)/.installed
	$(PY) -m mrfbatch.run_extraction --url examples/in-network-sample.json.gz \
		--cpt-whitelist examples/codes.txt --output-dir results
	@cat results/in-network-sample/status.json

test: $(VENV)/.installed
	$(VENV)/bin/pytest -n $(TEST_WORKERS)

test-cluster: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[cluster]'
	PYTEST=$(VENV)/bin/pytest bash .ci/slurm-test

test-sanitizers: $(VENV)/.installed
	PY=$(PY) PYTEST=$(VENV)/bin/pytest TEST_WORKERS=$(TEST_WORKERS) bash .ci/sanitizers

check: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/ruff format --check src tests scripts bench
	$(VENV)/bin/mypy
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/snakemake --lint --config source=url input=examples/in-network-sample.json.gz
	@# The house rules: no import circle, no private import across modules, no module over
	@# 500 lines, the package imports nothing from tests/ (CONTRIBUTING.md).
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/test_house.py

bench: $(VENV)/.installed
	$(PY) bench/run.py --mb $(BENCH_MB)
	$(PY) bench/workflow_scale.py $(SCALE_ARGS)

bench-smoke: $(VENV)/.installed
	$(MAKE) bench BENCH_MB=20 SCALE_ARGS="--tasks 20 --index-files 500"

clean:
	rm -rf $(VENV) results logs .snakemake build $(EXTENSIONS:%=src/mrfbatch/%.*.so)
