# make example   extract the bundled example (no network) into results/
# make test      run the test suite (unit, end-to-end against a local HTTP server)
# make check     lint and type-check
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

.PHONY: example test check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

example: $(VENV)/.installed
	$(PY) -m mrfbatch.run_extraction --url examples/in-network-sample.json.gz \
		--cpt-whitelist examples/codes.txt --output-dir results
	@cat results/in-network-sample/status.json

test: $(VENV)/.installed
	$(VENV)/bin/pytest

check: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) results
