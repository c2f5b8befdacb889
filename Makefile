# make run       run the workflow on the bundled example source (no network) into results/
# make example   extract one bundled file with the single-file command
# make test      run the test suite (unit, end-to-end against a local HTTP server)
# make check     lint and type-check
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: run example test check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[workflow,test]'
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/snakemake --cores 2 --config source=csv input=examples/plans.csv \
		cpt_whitelist=examples/codes.txt
	@echo "tables: results/<network_id>/; manifest: results/manifest.json; logs: logs/extract/"

example: $(VENV)/.installed
	$(PY) -m mrfbatch.run_extraction --url examples/in-network-sample.json.gz \
		--cpt-whitelist examples/codes.txt --output-dir results
	@cat results/in-network-sample/status.json

test: $(VENV)/.installed
	$(VENV)/bin/pytest

check: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/snakemake --lint --config source=url input=examples/in-network-sample.json.gz

clean:
	rm -rf $(VENV) results logs .snakemake
