# Two commands do everything on a fresh machine: `make train` and `make test`.
# Each creates .venv and installs the project (with its dev tools) when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TRAIN_ARGS ?=

.PHONY: train evaluate test lint notebooks benchmark reliability clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The repository publishes its pages: docs/results.md, docs/results.json, the figures and the README's table.
PUBLISH := --results docs --readme README.md

train: $(STAMP)
	$(PY) scripts/train.py $(PUBLISH) $(TRAIN_ARGS)

evaluate: $(STAMP)
	$(PY) scripts/evaluate.py $(PUBLISH)

test: $(STAMP)
	$(PY) -m pytest

notebooks: $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,notebooks]'
	$(VENV)/bin/jupyter lab notebooks/

benchmark: $(STAMP)
	$(PY) scripts/benchmark.py

reliability: $(STAMP)
	$(PY) scripts/reliability.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
